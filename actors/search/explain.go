package search

import "strings"

// Explain returns the names of the fields of d (see FieldNames) that query matches, in
// field order, the way Search matches them: through the query's words, their synonyms and
// compounds, and the last word as a prefix. It says why a hit was found, for agents and the
// dashboard; it does not rank. It returns nil for a blank query or no match.
//
// It indexes d on its own, so it costs about one SetServer of one tool: meant for the few
// hits a search returns, not for a whole catalogue.
func Explain(query string, d Doc) []string {
	q := strings.TrimSpace(query)
	if q == "" || d.Tool == "" {
		return nil
	}
	ix := NewIndex()
	ix.SetServer(d.Server, []Doc{d})
	var matched [numFields]bool
	for _, alts := range ix.queryTerms(q) {
		for _, a := range alts {
			for _, p := range a.te.postings {
				for f := range numFields {
					if p.tf[f] > 0 {
						matched[f] = true
					}
				}
			}
		}
	}
	var out []string
	for f, m := range matched {
		if m {
			out = append(out, FieldNames[f])
		}
	}
	if e := &ix.docs[0]; e.live && (e.keyLower == strings.ToLower(q) || e.nameLower == strings.ToLower(q)) && len(out) == 0 {
		out = append(out, FieldNames[fieldName])
	}
	return out
}
