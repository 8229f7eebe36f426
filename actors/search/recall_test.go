package search

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// catalogueDir holds the search quality set (benchmark B9): real.json, the tools of the real
// npm MCP servers (written by test/catalogue), synthetic.json, hand-written tools of typical
// servers, and queries.json, questions as a person would ask them, each labelled with the
// one tool that answers it.
var catalogueDir = filepath.Join("..", "..", "test", "testdata", "catalogue")

type catalogueTool struct {
	Server      string `json:"server"`
	Tool        string `json:"tool"`
	Description string `json:"description"`
}

type labelledQuery struct {
	Query    string `json:"query"`
	Expected string `json:"expected"`
}

func loadJSON(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(catalogueDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func loadCatalogue(t *testing.T) (*Index, map[string]bool) {
	t.Helper()
	byServer := map[string][]Doc{}
	keys := map[string]bool{}
	for _, name := range []string{"real.json", "synthetic.json"} {
		var tools []catalogueTool
		loadJSON(t, name, &tools)
		if len(tools) == 0 {
			t.Fatalf("%s is empty", name)
		}
		for _, tl := range tools {
			byServer[tl.Server] = append(byServer[tl.Server], Doc{Server: tl.Server, Tool: tl.Tool, Description: tl.Description})
			keys[tl.Server+":"+tl.Tool] = true
		}
	}
	ix := NewIndex()
	for s, docs := range byServer {
		ix.SetServer(s, docs)
	}
	return ix, keys
}

// TestRecall is benchmark B9: recall@1 >= 0.5 and recall@5 >= 0.9 over each labelled query
// set. queries.json was written before the ranker was tuned and the ranker was then
// improved on its misses; queries_holdout.json was written after that tuning and has not been
// used to change the ranker, so its figures are the honest estimate of quality on new
// queries. Add queries to the hold-out set freely; a query moved out of it after the ranker
// was changed for it belongs in queries.json.
func TestRecall(t *testing.T) {
	ix, keys := loadCatalogue(t)
	if ix.Len() < 500 {
		t.Fatalf("catalogue has %d tools, want >= 500", ix.Len())
	}
	for _, name := range []string{"queries.json", "queries_holdout.json"} {
		t.Run(name, func(t *testing.T) {
			var queries []labelledQuery
			loadJSON(t, name, &queries)
			for _, q := range queries {
				if !keys[q.Expected] {
					t.Fatalf("query %q expects %s, which is not in the catalogue", q.Query, q.Expected)
				}
			}
			r1, r5 := recall(t, ix, queries)
			t.Logf("B9 search quality: %d tools, %s: %d queries: recall@1 = %.3f, recall@5 = %.3f",
				ix.Len(), name, len(queries), r1, r5)
			if r1 < 0.5 {
				t.Errorf("recall@1 = %.3f, want >= 0.5", r1)
			}
			if r5 < 0.9 {
				t.Errorf("recall@5 = %.3f, want >= 0.9", r5)
			}
		})
	}
}

// recall returns the share of queries whose expected tool is first, and in the first five.
// It logs the misses, and with -v the hits below the first place.
func recall(t *testing.T, ix *Index, queries []labelledQuery) (at1, at5 float64) {
	t.Helper()
	if len(queries) < 50 {
		t.Fatalf("%d queries, want at least 50", len(queries))
	}
	n1, n5 := 0, 0
	for _, q := range queries {
		hits := keys(ix.Search(q.Query, 5))
		rank := slices.Index(hits, q.Expected)
		switch {
		case rank == 0:
			n1++
			n5++
		case rank > 0:
			n5++
			if testing.Verbose() {
				t.Logf("rank %d: %q -> %s; got %v", rank+1, q.Query, q.Expected, hits)
			}
		default:
			t.Logf("miss:   %q -> %s; got %v", q.Query, q.Expected, hits)
		}
	}
	return float64(n1) / float64(len(queries)), float64(n5) / float64(len(queries))
}
