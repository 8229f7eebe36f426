package search_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpproxy/mcpproxy/actors/search/searcheval"
)

// catalogueDir holds the search quality set (benchmark B9): real.json, the tools of the real
// npm MCP servers (written by test/catalogue), synthetic.json, hand-written tools of typical
// servers, and the labelled query sets; see its README.
var catalogueDir = filepath.Join("..", "..", "test", "testdata", "catalogue")

// recallFloors are the figures each set must keep: the targets where the ranker meets them,
// otherwise what it reached when last changed, so that a regression fails.
var recallFloors = map[string]struct{ at1, at5 float64 }{
	"queries.json":         {0.5, 0.9},
	"queries_holdout.json": {0.5, 0.9},
	// Written independently of the ranker, over real.json; the target is
	// recall@5 >= 0.85 and recall@1 >= 0.6.
	"queries_people.tsv": {0.48, 0.79},
	// Written the same way by someone who had seen no other set and not the ranker; the set
	// to tune on for people's phrasing. Floors at what the ranker reaches.
	"queries_dev.tsv": {0.60, 0.84},
}

// TestRecall is benchmark B9: recall@1, recall@5 and MRR@5 over each labelled query set.
// queries.json was written before the ranker was tuned and the ranker was then improved on
// its misses; queries_holdout.json was written after that tuning and has not been used to
// change the ranker; queries_people.tsv was written independently, phrased as people ask,
// and nothing in the ranker or its vocabulary was fitted to it. Its figures are the honest
// estimate of quality on new queries. queries_dev.tsv was written in the same manner, later,
// by someone who had seen neither the ranker nor any other set; it is the set the ranker may
// be improved on for people's phrasing, so that the independent set stays blind.
func TestRecall(t *testing.T) {
	for _, set := range searcheval.Sets {
		t.Run(set.File, func(t *testing.T) {
			ix, keys, err := searcheval.Load(catalogueDir, set.Catalogues)
			if err != nil {
				t.Fatal(err)
			}
			if ix.Len() < 100 {
				t.Fatalf("catalogue has %d tools, want >= 100", ix.Len())
			}
			queries, err := searcheval.LoadQueries(filepath.Join(catalogueDir, set.File))
			if err != nil {
				t.Fatal(err)
			}
			if len(queries) < 50 {
				t.Fatalf("%d queries, want at least 50", len(queries))
			}
			for _, q := range queries {
				found := false
				for k := range keys {
					if q.Expected.MatchString(k) {
						found = true
						break
					}
				}
				if !found {
					t.Fatalf("query %q expects %s, which matches nothing in the catalogue", q.Query, q.Expected)
				}
			}
			f := searcheval.Evaluate(ix, queries)
			for _, r := range f.Results {
				switch {
				case set.Blind:
					// figures only (Set.Blind)
				case r.Rank == 0:
					t.Logf("miss:   %q -> %s; got %v", r.Query.Query, r.Query.Expected, r.Got)
				case r.Rank > 1 && testing.Verbose():
					t.Logf("rank %d: %q -> %s; got %v", r.Rank, r.Query.Query, r.Query.Expected, r.Got)
				}
			}
			t.Logf("B9 search quality: %d tools, %s: %d queries: recall@1 = %.3f, recall@5 = %.3f, MRR@5 = %.3f",
				ix.Len(), set.File, f.N, f.At1, f.At5, f.MRR)
			floor := recallFloors[set.File]
			if f.At1 < floor.at1 {
				t.Errorf("recall@1 = %.3f, want >= %.2f", f.At1, floor.at1)
			}
			if f.At5 < floor.at5 {
				t.Errorf("recall@5 = %.3f, want >= %.2f", f.At5, floor.at5)
			}
		})
	}
}

// misspell swaps the two middle letters of the longest word of six letters or more, the
// commonest kind of typing slip ("repository" as "reposiotry"); a query without such a word
// is left as it is.
func misspell(q string) string {
	fs := strings.Fields(q)
	best := -1
	for i, f := range fs {
		if len(f) >= 6 && strings.Trim(f, "abcdefghijklmnopqrstuvwxyz") == "" && (best < 0 || len(f) > len(fs[best])) {
			best = i
		}
	}
	if best < 0 {
		return q
	}
	w := []byte(fs[best])
	m := len(w) / 2
	w[m-1], w[m] = w[m], w[m-1]
	fs[best] = string(w)
	return strings.Join(fs, " ")
}

// TestRecallMisspelt measures each set with one word of each query misspelt (misspell, in
// memory; the files are untouched): the misspelling fallback (typo.go) must keep most of
// their recall. Without it, recall@1 is 0.571, 0.610 and 0.358 (labelled, hold-out,
// independent), recall@5 0.864, 0.814 and 0.733; with it 0.721, 0.763 and 0.400, and 0.916,
// 0.932 and 0.775 (since the second stage of ranking and a title counted once beside the
// name, recall@1 is 0.727, 0.797 and 0.425; since the query-reading rules of 2026-12-02,
// recall@1 0.740, 0.797 and 0.442, recall@5 0.916, 0.949 and 0.783). The floors are the
// targets on the first two sets, what the ranker reaches on the third.
func TestRecallMisspelt(t *testing.T) {
	floors := map[string]struct{ at1, at5 float64 }{
		"queries.json":         {0.65, 0.9},
		"queries_holdout.json": {0.65, 0.9},
		"queries_people.tsv":   {0.38, 0.77},
	}
	for _, set := range searcheval.Sets {
		floor, ok := floors[set.File]
		if !ok {
			continue
		}
		t.Run(set.File, func(t *testing.T) {
			ix, _, err := searcheval.Load(catalogueDir, set.Catalogues)
			if err != nil {
				t.Fatal(err)
			}
			queries, err := searcheval.LoadQueries(filepath.Join(catalogueDir, set.File))
			if err != nil {
				t.Fatal(err)
			}
			changed := 0
			for i, q := range queries {
				if m := misspell(q.Query); m != q.Query {
					queries[i].Query = m
					changed++
				}
			}
			if changed < len(queries)/2 {
				t.Fatalf("only %d of %d queries misspelt", changed, len(queries))
			}
			f := searcheval.Evaluate(ix, queries)
			t.Logf("%s misspelt (%d of %d queries): recall@1 = %.3f, recall@5 = %.3f, MRR@5 = %.3f",
				set.File, changed, f.N, f.At1, f.At5, f.MRR)
			if f.At1 < floor.at1 || f.At5 < floor.at5 {
				t.Errorf("recall@1 = %.3f, recall@5 = %.3f, want >= %.2f and >= %.2f", f.At1, f.At5, floor.at1, floor.at5)
			}
		})
	}
}
