// Package search is mcpproxy's tool search: tokenising and ranking, pure functions and one
// in-memory index, no actors and no I/O.
//
// Each tool is a document with the fields of everything the catalogue says about it: its
// name split into words, its title, its server's name and instructions, its description, its
// input schema's property names (split into words), their descriptions and enum values, and
// its annotations (fields.go). A query is ranked with BM25F over these fields, each with its
// own weight (name and title most, the server's instructions and annotations least), after
// case folding, a light English stemmer and a small stopword list. Each query word also matches its synonyms from a small table (a synonym counts half
// as much as the word itself, and the word and its synonyms share one IDF), two adjacent
// words match their compound ("on call" finds "oncall"), a file name in the query stands for
// "file", and the last word matches the longer terms it begins, for search-as-you-type. A
// query that is exactly a tool's name ("create_issue", "createIssue" or
// "github:create_issue") puts that tool first.
//
// Quality is measured by TestRecall over the labelled queries in test/testdata/catalogue
// (benchmark B9); speed by BenchmarkSearch10k and BenchmarkReindexServer100 (B4).
//
// # Usage
//
//	ix := search.NewIndex()
//	ix.SetServer("github", []search.Doc{{Tool: "create_issue", Description: "Create an issue"}})
//	hits := ix.Search("open a new bug", 15)
//
// # Concurrency
//
// An Index is not safe for concurrent use, not even for concurrent searches: it keeps
// scratch buffers between calls. It is meant to be owned by one actor, which serialises every
// call through its mailbox.
package search

import (
	"encoding/json"
	"math"
	"slices"
	"sort"
	"strings"
)

// Doc is one tool to index. Its key is Server+":"+Tool. Only Tool is required; the rest is
// what the upstream says about the tool and itself, each indexed as a field of its own.
type Doc struct {
	Server, Tool, Description string
	// Title is the tool's human title (MCP's title or annotations.title).
	Title string
	// InputSchema is the tool's JSON Schema for its arguments; property names, their
	// descriptions and enum values are indexed. Invalid JSON is ignored.
	InputSchema json.RawMessage
	// Annotations is the tool's MCP annotations object; its title and the hints that are
	// true are indexed.
	Annotations json.RawMessage
	// Instructions are the server's instructions from its initialize answer.
	Instructions string
}

// Hit is one search result.
type Hit struct {
	Server, Tool string
	Score        float64
}

const (
	k1 = 1.2
	// synonymWeight and prefixWeight scale a query word's match through a synonym or as a
	// prefix of a longer term, relative to the word itself.
	synonymWeight = 0.5
	// lexiconWeight scales a match through a WordNet synonym: general English, not chosen
	// for tools, so weaker evidence than the software vocabulary in synonyms.go.
	lexiconWeight = 0.35
	prefixWeight  = 0.6
	// compoundWeight scales the match of two adjacent query words as one compound term
	// ("on call" as "oncall"): it stands for both words, so it counts as two.
	compoundWeight = 2.0
	// maxPrefixTerms bounds how many terms a query's last word may expand to.
	maxPrefixTerms = 16
	// coordExp is how strongly the share of the query's words a tool matches scales its
	// score (0 turns it off).
	coordExp = 0.5
	// minPrefixLen is the shortest last word that is expanded as a prefix.
	minPrefixLen = 3
	// Boosts for a query that is exactly a tool's name; they dwarf any BM25F score.
	boostKey       = 3000 // "server:tool"
	boostName      = 2000 // "tool", as written (case-insensitive)
	boostNameWords = 1000 // the same words as the tool's name ("create issue" for create_issue)
)

// posting is one document's occurrence of a term, with the count in each field.
type posting struct {
	doc int32
	// ref is the index of this posting's postingRef in its document's refs.
	ref int32
	tf  [numFields]uint16
}

type termEntry struct {
	term     string
	postings []posting
}

// postingRef is where one of a document's postings is: term te, index at. Removal swaps the
// last posting of a term into the hole and updates that posting's ref, so removing a
// document costs its own postings, however many other servers share its terms: a
// tear-down of n servers that all say "fetch" must not walk the "fetch" list n times.
type postingRef struct {
	te *termEntry
	at int32
}

// The exact-name tables, in the order of docEntry.at.
const (
	tableKey = iota
	tableName
	tableNameWords
	numTables
)

type docEntry struct {
	server, tool, key string
	lens              [numFields]uint16
	live              bool
	refs              []postingRef
	// Lookup keys of the exact-name tables and the document's index in each key's list,
	// kept to remove it from them in O(1) (many servers have a tool named "echo").
	keyLower, nameLower, nameWords string
	at                             [numTables]int32
}

type serverEntry struct {
	docs []int32
}

// Index is an in-memory ranked index of tools, grouped by server so that one server's tools
// are replaced or removed without touching the others'. The zero value is not usable; call
// NewIndex. See the package documentation for concurrency.
type Index struct {
	docs    []docEntry
	free    []int32 // dead slots of docs, reused by the next SetServer
	servers map[string]*serverEntry
	terms   map[string]*termEntry
	live    int
	sumLen  [numFields]int

	// Exact-name tables, indexed by tableKey...: lower-cased "server:tool", lower-cased
	// tool, tool name words.
	tables [numTables]map[string][]int32

	// vocab is every term, sorted, for prefix matching; rebuilt lazily after a change.
	vocab      []string
	vocabDirty bool
	// sortedAll is every live doc sorted by key, for All; rebuilt lazily after a change.
	sortedAll      []int32
	sortedAllDirty bool

	// Scratch buffers for Search, indexed by doc id.
	acc      []float64
	best     []float64
	matched  []uint16 // how many query words each doc matched
	accDocs  []int32
	bestDocs []int32
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	ix := &Index{
		servers: make(map[string]*serverEntry),
		terms:   make(map[string]*termEntry),
	}
	for i := range ix.tables {
		ix.tables[i] = make(map[string][]int32)
	}
	return ix
}

// tableKeys are a document's keys in the exact-name tables.
func (e *docEntry) tableKeys() [numTables]string {
	return [numTables]string{e.keyLower, e.nameLower, e.nameWords}
}

// Len returns the number of indexed tools.
func (ix *Index) Len() int { return ix.live }

// ServerLen returns the number of indexed tools of server.
func (ix *Index) ServerLen(server string) int {
	if s := ix.servers[server]; s != nil {
		return len(s.docs)
	}
	return 0
}

// SetServer replaces all of server's tools with docs. The server argument wins over each
// Doc's Server field. When docs name the same tool twice, the last one is kept. An empty docs
// removes the server.
func (ix *Index) SetServer(server string, docs []Doc) {
	ix.RemoveServer(server)
	if len(docs) == 0 {
		return
	}
	// Keep the last of duplicate tool names, in the order given.
	last := make(map[string]int, len(docs))
	for i, d := range docs {
		last[d.Tool] = i
	}
	se := &serverEntry{docs: make([]int32, 0, len(last))}
	serverTerms := terms(server, serverStopwords)
	instrTerms := terms(firstDoc(docs).Instructions, nil)
	counts := make(map[string][numFields]uint16)
	for i, d := range docs {
		if last[d.Tool] != i {
			continue
		}
		id := ix.allocDoc()
		var fts [numFields][]string
		text := fieldTexts(server, d)
		for f := range numFields {
			switch f {
			case fieldServer:
				fts[f] = serverTerms
			case fieldInstructions:
				fts[f] = instrTerms
			default:
				fts[f] = terms(text[f], nil)
			}
		}
		clear(counts)
		for f, ts := range fts {
			for _, t := range ts {
				c := counts[t]
				if c[f] < math.MaxUint16 {
					c[f]++
				}
				counts[t] = c
			}
		}
		e := docEntry{
			server:    server,
			tool:      d.Tool,
			key:       server + ":" + d.Tool,
			live:      true,
			nameLower: strings.ToLower(d.Tool),
			nameWords: strings.Join(Tokenize(d.Tool), " "),
		}
		e.keyLower = strings.ToLower(e.key)
		for f, ts := range fts {
			e.lens[f] = uint16(min(len(ts), math.MaxUint16))
			ix.sumLen[f] += int(e.lens[f])
		}
		e.refs = make([]postingRef, 0, len(counts))
		for t, c := range counts {
			te := ix.terms[t]
			if te == nil {
				te = &termEntry{term: t}
				ix.terms[t] = te
				ix.vocabDirty = true
			}
			e.refs = append(e.refs, postingRef{te: te, at: int32(len(te.postings))})
			te.postings = append(te.postings, posting{doc: id, ref: int32(len(e.refs) - 1), tf: c})
		}
		for t, k := range e.tableKeys() {
			if k == "" {
				e.at[t] = -1
				continue
			}
			e.at[t] = int32(len(ix.tables[t][k]))
			ix.tables[t][k] = append(ix.tables[t][k], id)
		}
		ix.docs[id] = e
		se.docs = append(se.docs, id)
		ix.live++
	}
	ix.servers[server] = se
	ix.sortedAllDirty = true
}

// firstDoc returns the first of docs with server instructions: they are the server's, so
// every document of one SetServer shares them.
func firstDoc(docs []Doc) Doc {
	for _, d := range docs {
		if d.Instructions != "" {
			return d
		}
	}
	return Doc{}
}

func (ix *Index) allocDoc() int32 {
	if n := len(ix.free); n > 0 {
		id := ix.free[n-1]
		ix.free = ix.free[:n-1]
		return id
	}
	ix.docs = append(ix.docs, docEntry{})
	return int32(len(ix.docs) - 1)
}

// RemoveServer removes all of server's tools. Removing an unknown server does nothing.
func (ix *Index) RemoveServer(server string) {
	se := ix.servers[server]
	if se == nil {
		return
	}
	delete(ix.servers, server)
	for _, id := range se.docs {
		e := &ix.docs[id]
		for _, r := range e.refs {
			ix.unpost(r)
		}
		for t, k := range e.tableKeys() {
			if e.at[t] >= 0 {
				ix.untable(t, k, e.at[t])
			}
		}
		for f := range numFields {
			ix.sumLen[f] -= int(e.lens[f])
		}
		*e = docEntry{}
		ix.free = append(ix.free, id)
		ix.live--
	}
	ix.sortedAllDirty = true
}

// unpost removes the posting at r by moving the term's last posting into its place.
func (ix *Index) unpost(r postingRef) {
	te := r.te
	last := int32(len(te.postings) - 1)
	if r.at != last {
		moved := te.postings[last]
		te.postings[r.at] = moved
		ix.docs[moved.doc].refs[moved.ref].at = r.at
	}
	te.postings[last] = posting{}
	te.postings = te.postings[:last]
	if last == 0 {
		delete(ix.terms, te.term)
		ix.vocabDirty = true
	}
}

// untable removes the document at index i of table t's list for key k, moving the list's
// last document into its place.
func (ix *Index) untable(t int, k string, i int32) {
	ids := ix.tables[t][k]
	last := int32(len(ids) - 1)
	if i != last {
		moved := ids[last]
		ids[i] = moved
		ix.docs[moved].at[t] = i
	}
	if last == 0 {
		delete(ix.tables[t], k)
		return
	}
	ix.tables[t][k] = ids[:last]
}

// All returns every tool sorted by "server:tool", each with Score 0. A limit of 0 or less
// means no limit.
func (ix *Index) All(limit int) []Hit {
	if ix.sortedAllDirty || ix.sortedAll == nil {
		ix.sortedAll = ix.sortedAll[:0]
		for id := range ix.docs {
			if ix.docs[id].live {
				ix.sortedAll = append(ix.sortedAll, int32(id))
			}
		}
		slices.SortFunc(ix.sortedAll, func(a, b int32) int {
			return strings.Compare(ix.docs[a].key, ix.docs[b].key)
		})
		ix.sortedAllDirty = false
	}
	n := len(ix.sortedAll)
	if limit > 0 && limit < n {
		n = limit
	}
	if n == 0 {
		return nil
	}
	out := make([]Hit, n)
	for i, id := range ix.sortedAll[:n] {
		out[i] = Hit{Server: ix.docs[id].server, Tool: ix.docs[id].tool}
	}
	return out
}

// queryAlt is one term a query word may match, with the weight of that match.
type queryAlt struct {
	te *termEntry
	w  float64
}

// Search returns the tools that best match query, best first, ties broken by "server:tool".
// It returns at most limit hits; a limit of 0 or less means every match. An empty or blank
// query returns nil.
func (ix *Index) Search(query string, limit int) []Hit {
	q := strings.TrimSpace(query)
	if q == "" || ix.live == 0 {
		return nil
	}
	ix.ensureScratch()

	qt := ix.queryTerms(q)
	for _, alts := range qt {
		ix.scoreTerm(alts)
	}
	if len(qt) > 1 {
		// Coordination: a tool that matches more of the query's words ranks above one that
		// matches a few of them very well.
		for _, id := range ix.accDocs {
			ix.acc[id] *= math.Pow(float64(ix.matched[id])/float64(len(qt)), coordExp)
		}
	}
	for _, id := range ix.accDocs {
		ix.matched[id] = 0
	}
	ix.boostExact(q)

	hits := ix.topK(limit)
	for _, id := range ix.accDocs {
		ix.acc[id] = 0
	}
	ix.accDocs = ix.accDocs[:0]
	return hits
}

// queryTerms turns a query into its words, each with the terms it may match: the word
// itself, its synonyms, for the last word the longer terms it begins, and for two adjacent
// words their compound ("on call" also matches "oncall").
func (ix *Index) queryTerms(q string) [][]queryAlt {
	raw := Tokenize(fileNamesToWords(q))
	toks := expandAbbreviations(raw)
	lx := loadLexicon()
	// The last word is a prefix only while being typed: not when followed by a separator,
	// and not when it is a known abbreviation (then its expansion follows it).
	_, lastAbbr := abbreviations[lastOf(raw)]
	lastIsPrefix := !strings.ContainsRune(" \t\n", rune(q[len(q)-1])) && !lastAbbr
	var out [][]queryAlt
	var seen []string
	word := func(raw, t, base string, prefixOf string, weight float64) {
		if contains(seen, t) {
			return
		}
		seen = append(seen, t)
		var alts []queryAlt
		var used []string
		add := func(term string, w float64) {
			if contains(used, term) {
				return
			}
			used = append(used, term)
			if te := ix.terms[term]; te != nil {
				alts = append(alts, queryAlt{te: te, w: w})
			}
		}
		add(t, weight)
		roots := []string{t}
		if base != "" && stem(base) != t {
			add(stem(base), weight)
			roots = append(roots, stem(base))
		}
		for _, r := range roots {
			for _, s := range synonyms[r] {
				add(s, weight*synonymWeight)
			}
		}
		lexWords := []string{raw}
		if base != "" {
			lexWords = append(lexWords, base)
		}
		for _, w := range lexWords {
			for _, s := range lx.synonyms(w) {
				add(s, weight*lexiconWeight)
			}
		}
		if prefixOf != "" {
			for _, p := range ix.prefixTerms(prefixOf, t) {
				add(p, prefixWeight)
			}
		}
		if len(alts) > 0 {
			out = append(out, alts)
		}
	}
	for i, tok := range toks {
		if i > 0 {
			// A compound only counts when the index or the synonym table knows it, so
			// that "to do" does not invent a word.
			if c := stem(toks[i-1] + tok); ix.terms[c] != nil || synonyms[c] != nil {
				word(toks[i-1]+tok, c, "", "", compoundWeight)
			}
		}
		if _, ok := stopwords[tok]; ok {
			continue
		}
		prefixOf := ""
		if i == len(toks)-1 && lastIsPrefix && len(tok) >= minPrefixLen {
			prefixOf = tok
		}
		word(tok, stem(tok), lx.base[tok], prefixOf, 1)
	}
	return out
}

func lastOf(toks []string) string {
	if len(toks) == 0 {
		return ""
	}
	return toks[len(toks)-1]
}

// expandAbbreviations appends the expansion of each abbreviation among toks (see
// abbreviations) after it, so that its words score as query words of their own.
func expandAbbreviations(toks []string) []string {
	n := 0
	for _, t := range toks {
		if _, ok := abbreviations[t]; ok {
			n++
		}
	}
	if n == 0 {
		return toks
	}
	out := make([]string, 0, len(toks)+2*n)
	for _, t := range toks {
		out = append(out, t)
		if e, ok := abbreviations[t]; ok {
			out = append(out, strings.Fields(e)...)
		}
	}
	return out
}

// fileExtensions are the extensions that make a query word a file name ("report.txt").
var fileExtensions = setOf(
	"txt", "md", "json", "csv", "tsv", "pdf", "png", "jpg", "jpeg", "gif", "svg", "webp", "mp3",
	"mp4", "wav", "go", "py", "js", "ts", "tsx", "jsx", "java", "rb", "rs", "c", "h", "cpp",
	"yaml", "yml", "toml", "xml", "html", "css", "log", "doc", "docx", "xls", "xlsx", "ppt",
	"pptx", "zip", "tar", "gz", "sql", "sh", "ini", "cfg", "conf",
)

// fileNamesToWords replaces what a query names by example with the word for its kind: each
// file name by its base name and "file", so that "rename report.txt" asks for a file tool
// rather than one about text; a URL by "url" and its host's words; a path ("~/notes",
// "/var/log/") by its last element and "path"; an e-mail address by "email"; an IP address
// or network by "ip address"; an arithmetic expression ("4821+3377", "2^10") by "calculate".
func fileNamesToWords(q string) string {
	if !strings.ContainsAny(q, "./@:+*^=") {
		return q
	}
	fields := strings.Fields(q)
	changed := false
	for i, f := range fields {
		f = strings.TrimRight(strings.TrimLeft(f, "(\"'"), ",;:!?)\"'")
		if w, ok := entityWords(f); ok {
			fields[i] = w
			changed = true
		}
	}
	if !changed {
		return q
	}
	return strings.Join(fields, " ")
}

// entityWords returns the words for what one query word names by example, if it does.
func entityWords(f string) (string, bool) {
	if f == "" {
		return "", false
	}
	lower := strings.ToLower(f)
	if scheme, rest, ok := strings.Cut(lower, "://"); ok && scheme != "" && rest != "" {
		host, _, _ := strings.Cut(rest, "/")
		return "url " + strings.ReplaceAll(host, ".", " "), true
	}
	if at := strings.IndexByte(f, '@'); at > 0 && strings.Contains(f[at:], ".") && !strings.Contains(f, ":") {
		return "email", true
	}
	if isIPLike(f) {
		return "ip address", true
	}
	if isArithmetic(f) {
		return "calculate", true
	}
	if dot := strings.LastIndexByte(f, '.'); dot > 0 && dot < len(f)-1 {
		if _, ok := fileExtensions[lower[dot+1:]]; ok {
			base := f[:dot]
			if sl := strings.LastIndexByte(base, '/'); sl >= 0 {
				base = base[sl+1:]
			}
			return base + " file", true
		}
	}
	if strings.HasPrefix(f, "~/") || strings.HasPrefix(f, "/") || strings.HasPrefix(f, "./") ||
		(strings.Count(f, "/") >= 2 && !strings.Contains(f, " ")) {
		last := strings.TrimRight(f, "/")
		if sl := strings.LastIndexByte(last, '/'); sl >= 0 {
			last = last[sl+1:]
		}
		return last + " path", true
	}
	return "", false
}

// isIPLike reports whether f is an IPv4 address or network ("10.0.0.0/22").
func isIPLike(f string) bool {
	addr, _, _ := strings.Cut(f, "/")
	parts := strings.Split(addr, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// isArithmetic reports whether f is digits joined by arithmetic operators ("12*7", "2^10").
func isArithmetic(f string) bool {
	digits, ops := 0, 0
	for i := 0; i < len(f); i++ {
		switch c := f[i]; {
		case c >= '0' && c <= '9' || c == '.':
			digits++
		case c == '+' || c == '*' || c == '^' || c == '/' || c == '-' || c == '%' || c == '=' || c == '(' || c == ')':
			ops++
		default:
			return false
		}
	}
	return digits > 0 && ops > 0 && f != "-" && !(ops == 1 && (f[0] == '-' || f[0] == '+'))
}

// prefixTerms returns up to maxPrefixTerms indexed terms that begin with the raw word or its
// stem, shortest first.
func (ix *Index) prefixTerms(raw, stemmed string) []string {
	if ix.vocabDirty || ix.vocab == nil {
		ix.vocab = ix.vocab[:0]
		for t := range ix.terms {
			ix.vocab = append(ix.vocab, t)
		}
		sort.Strings(ix.vocab)
		ix.vocabDirty = false
	}
	var out []string
	for _, p := range []string{stemmed, raw} {
		i := sort.SearchStrings(ix.vocab, p)
		for ; i < len(ix.vocab) && strings.HasPrefix(ix.vocab[i], p) && len(out) < 4*maxPrefixTerms; i++ {
			if ix.vocab[i] != p && !contains(out, ix.vocab[i]) {
				out = append(out, ix.vocab[i])
			}
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return len(a) - len(b) })
	if len(out) > maxPrefixTerms {
		out = out[:maxPrefixTerms]
	}
	return out
}

func (ix *Index) ensureScratch() {
	if n := len(ix.docs); len(ix.acc) < n {
		ix.acc = make([]float64, n)
		ix.best = make([]float64, n)
		ix.matched = make([]uint16, n)
	}
}

// scoreTerm adds one query word's BM25F contribution to every document that matches it,
// through the best of its alternative terms, so that a tool that says both "get" and "fetch"
// is not counted twice for "fetch". The query word and its synonyms are scored as one term
// whose document frequency is that of their union, like a synonym query in Lucene.
func (ix *Index) scoreTerm(alts []queryAlt) {
	n := float64(ix.live)
	var avg [numFields]float64
	for f := range numFields {
		avg[f] = float64(ix.sumLen[f]) / n
	}
	// First the best weighted, saturated term frequency of each matching document.
	for _, a := range alts {
		for _, p := range a.te.postings {
			d := &ix.docs[p.doc]
			var tf float64
			for f := range numFields {
				if p.tf[f] == 0 {
					continue
				}
				norm := 1.0
				if avg[f] > 0 {
					norm = 1 - fieldB[f] + fieldB[f]*float64(d.lens[f])/avg[f]
				}
				tf += fieldWeight[f] * float64(p.tf[f]) / norm
			}
			s := a.w * tf / (k1 + tf)
			if ix.best[p.doc] == 0 {
				ix.bestDocs = append(ix.bestDocs, p.doc)
			}
			if s > ix.best[p.doc] {
				ix.best[p.doc] = s
			}
		}
	}
	// Then one IDF for the word and its alternatives together, from the number of documents
	// any of them matches: a rare synonym of a common concept ("make" for "create") must not
	// count as a rare, telling word.
	df := float64(len(ix.bestDocs))
	idf := math.Log(1 + (n-df+0.5)/(df+0.5))
	for _, id := range ix.bestDocs {
		ix.addScore(id, idf*ix.best[id])
		ix.matched[id]++
		ix.best[id] = 0
	}
	ix.bestDocs = ix.bestDocs[:0]
}

func (ix *Index) addScore(id int32, s float64) {
	if ix.acc[id] == 0 {
		ix.accDocs = append(ix.accDocs, id)
	}
	ix.acc[id] += s
}

// boostExact lifts the tools whose full name the query is.
func (ix *Index) boostExact(q string) {
	lower := strings.ToLower(q)
	for _, id := range ix.tables[tableKey][lower] {
		ix.addScore(id, boostKey)
	}
	for _, id := range ix.tables[tableName][lower] {
		ix.addScore(id, boostName)
	}
	for _, id := range ix.tables[tableNameWords][strings.Join(Tokenize(q), " ")] {
		ix.addScore(id, boostNameWords)
	}
}

// better reports whether document a ranks before document b.
func (ix *Index) better(a, b int32) bool {
	if ix.acc[a] != ix.acc[b] {
		return ix.acc[a] > ix.acc[b]
	}
	return ix.docs[a].key < ix.docs[b].key
}

// topK returns the limit best scored documents, best first, using a bounded min-heap so a
// common word matching thousands of tools costs O(n log limit).
func (ix *Index) topK(limit int) []Hit {
	if len(ix.accDocs) == 0 {
		return nil
	}
	if limit <= 0 || limit > len(ix.accDocs) {
		limit = len(ix.accDocs)
	}
	// heap[0] is the worst of the kept documents.
	heap := make([]int32, 0, limit)
	worse := func(i, j int) bool { return ix.better(heap[j], heap[i]) }
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(heap) {
				return
			}
			m := l
			if r := l + 1; r < len(heap) && worse(r, l) {
				m = r
			}
			if !worse(m, i) {
				return
			}
			heap[i], heap[m] = heap[m], heap[i]
			i = m
		}
	}
	for _, id := range ix.accDocs {
		if len(heap) < limit {
			heap = append(heap, id)
			for i := len(heap) - 1; i > 0; {
				p := (i - 1) / 2
				if !worse(i, p) {
					break
				}
				heap[i], heap[p] = heap[p], heap[i]
				i = p
			}
			continue
		}
		if ix.better(id, heap[0]) {
			heap[0] = id
			down(0)
		}
	}
	slices.SortFunc(heap, func(a, b int32) int {
		if a == b {
			return 0
		}
		if ix.better(a, b) {
			return -1
		}
		return 1
	})
	out := make([]Hit, len(heap))
	for i, id := range heap {
		d := &ix.docs[id]
		out[i] = Hit{Server: d.server, Tool: d.tool, Score: ix.acc[id]}
	}
	return out
}
