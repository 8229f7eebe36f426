// Package searcheval measures the quality of the search index over the labelled catalogue in
// test/testdata/catalogue (benchmark B9): it loads the catalogues and the query sets and
// computes recall@1, recall@5 and MRR. TestRecall in actors/search and the B9 row of
// test/bench both use it, so the test and the benchmark table cannot disagree on how a
// catalogue entry becomes a search.Doc or how a query counts.
package searcheval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/mcpproxy/mcpproxy/actors/search"
)

// Catalogues are the tool files indexed together for the JSON query sets.
var Catalogues = []string{"real.json", "synthetic.json"}

// Sets are the labelled query sets, in the order they are reported.
var Sets = []Set{
	{File: "queries.json", Label: "labelled set", Catalogues: Catalogues},
	{File: "queries_holdout.json", Label: "hold-out set, never tuned on", Catalogues: Catalogues},
	// Written over real.json alone (its header says so), so measured over it alone.
	{File: "queries_people.tsv", Label: "independent set, phrased as people ask", Catalogues: []string{"real.json"}, Blind: true},
	// Written in the people set's manner by someone who had seen neither it, the other sets
	// nor the ranker, over real.json alone: the set to tune on for people's phrasing, so
	// that the people set stays blind.
	{File: "queries_dev.tsv", Label: "development set, phrased as people ask", Catalogues: []string{"real.json"}},
}

// Set is one query file and the catalogues it is measured over.
type Set struct {
	File, Label string
	Catalogues  []string
	// Blind sets are measured only: their queries are never printed by the tests, so that
	// no one tuning the ranker reads them (issue 21's rule for the independent set).
	Blind bool
}

// Tool is one catalogue entry, as test/catalogue writes it.
type Tool struct {
	Server       string          `json:"server"`
	Tool         string          `json:"tool"`
	Title        string          `json:"title,omitempty"`
	Description  string          `json:"description"`
	InputSchema  json.RawMessage `json:"input_schema,omitempty"`
	Annotations  json.RawMessage `json:"annotations,omitempty"`
	Instructions string          `json:"instructions,omitempty"`
}

// Query is one labelled query: the tool keys ("server:tool") that answer it match Expected.
type Query struct {
	Query    string
	Expected *regexp.Regexp
}

// Load indexes the named catalogues in dir and returns the index and every tool key in it.
func Load(dir string, catalogues []string) (*search.Index, map[string]bool, error) {
	byServer := map[string][]search.Doc{}
	keys := map[string]bool{}
	for _, name := range catalogues {
		var tools []Tool
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, nil, err
		}
		if err := json.Unmarshal(data, &tools); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(tools) == 0 {
			return nil, nil, fmt.Errorf("%s is empty", name)
		}
		for _, t := range tools {
			byServer[t.Server] = append(byServer[t.Server], search.Doc{
				Server: t.Server, Tool: t.Tool, Title: t.Title, Description: t.Description,
				InputSchema: t.InputSchema, Annotations: t.Annotations, Instructions: t.Instructions,
			})
			keys[t.Server+":"+t.Tool] = true
		}
	}
	ix := search.NewIndex()
	for s, docs := range byServer {
		ix.SetServer(s, docs)
	}
	return ix, keys, nil
}

// LoadQueries reads a query set: a JSON list of {"query","expected"} with an exact key, or
// a TSV of query<TAB>regular expression over "server:tool" whose first line is a header.
func LoadQueries(path string) ([]Query, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Query
	if strings.HasSuffix(path, ".tsv") {
		sc := bufio.NewScanner(bytes.NewReader(data))
		first := true
		for sc.Scan() {
			line := sc.Text()
			if first {
				first = false
				continue
			}
			if strings.TrimSpace(line) == "" {
				continue
			}
			q, re, ok := strings.Cut(line, "\t")
			if !ok {
				return nil, fmt.Errorf("%s: line %q has no tab", path, line)
			}
			rx, err := regexp.Compile(re)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			out = append(out, Query{Query: q, Expected: rx})
		}
		return out, sc.Err()
	}
	var list []struct{ Query, Expected string }
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, q := range list {
		out = append(out, Query{Query: q.Query, Expected: regexp.MustCompile("^" + regexp.QuoteMeta(q.Expected) + "$")})
	}
	return out, nil
}

// Result is one query's outcome: Rank is 1-based, 0 for a miss in the first five.
type Result struct {
	Query Query
	Rank  int
	Got   []string
}

// Figures are a set's quality figures.
type Figures struct {
	N             int
	At1, At5, MRR float64
	Results       []Result
}

// Evaluate runs every query against ix and scores the first five hits.
func Evaluate(ix *search.Index, queries []Query) Figures {
	f := Figures{N: len(queries)}
	n1, n5 := 0, 0
	rr := 0.0
	for _, q := range queries {
		r := Result{Query: q}
		for i, h := range ix.Search(q.Query, 5) {
			k := h.Server + ":" + h.Tool
			r.Got = append(r.Got, k)
			if r.Rank == 0 && q.Expected.MatchString(k) {
				r.Rank = i + 1
			}
		}
		switch {
		case r.Rank == 1:
			n1++
			n5++
		case r.Rank > 1:
			n5++
		}
		if r.Rank > 0 {
			rr += 1 / float64(r.Rank)
		}
		f.Results = append(f.Results, r)
	}
	if f.N > 0 {
		f.At1 = float64(n1) / float64(f.N)
		f.At5 = float64(n5) / float64(f.N)
		f.MRR = rr / float64(f.N)
	}
	return f
}
