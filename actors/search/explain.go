package search

// Explain returns the names of the fields of d (see FieldNames) that query matches, in
// field order: Hit.Fields of d searched for query in an index of d alone. It returns nil for
// a blank query or no match.
//
// Search already reports the fields of each hit in the index searched, which is what the
// registry returns; Explain is for a document outside an index. Because it indexes d on its
// own, the last word's completions and the derived forms it tries are d's own terms, not a
// whole catalogue's, so it may name a field that a search of a large index did not use.
func Explain(query string, d Doc) []string {
	if d.Tool == "" {
		return nil
	}
	ix := NewIndex()
	ix.SetServer(d.Server, []Doc{d})
	hits := ix.Search(query, 1)
	if len(hits) == 0 {
		return nil
	}
	return hits[0].Fields.Names()
}
