package search

import (
	"slices"
	"testing"
)

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b  string
		limit int
		want  int
	}{
		{"branch", "branch", 2, 0},
		{"brnach", "branch", 2, 1}, // two adjacent letters swapped: one edit
		{"brach", "branch", 2, 1},  // a letter missing
		{"branchh", "branch", 2, 1},
		{"bronch", "branch", 2, 1},
		{"repostiroy", "repository", 2, 2},
		{"commit", "branch", 2, 3}, // beyond the limit: limit+1
		{"", "abc", 5, 3},
	}
	for _, tc := range tests {
		if got := editDistance(tc.a, tc.b, tc.limit); got != tc.want {
			t.Errorf("editDistance(%q, %q, %d) = %d, want %d", tc.a, tc.b, tc.limit, got, tc.want)
		}
	}
}

func TestSearchMisspelt(t *testing.T) {
	ix := newTestIndex(t)
	for _, tc := range []struct{ query, want string }{
		{"serach repositroies", "github:search_repositories"},
		{"wether forecast", "weather:get_forecast"},
		{"list the chanels", "slack:slack_list_channels"},
		{"crate a pul request", "github:create_pull_request"},
	} {
		hits := ix.Search(tc.query+" ", 3)
		if len(hits) == 0 || keys(hits)[0] != tc.want {
			t.Errorf("Search(%q) = %v, want %s first", tc.query, keys(hits), tc.want)
		}
	}
	// An English word the index lacks is no misspelling, nor is a word shorter than five
	// letters, where one edit makes another word ("tab", "tag").
	for _, w := range []string{"recently", "yesterday", "tab"} {
		if got := ix.typoTermsFor(w); got != nil {
			t.Errorf("%q was taken for a misspelling of %v", w, got)
		}
	}
}

// typoTermsFor is what queryTerms asks typoTerms for a query word, if anything.
func (ix *Index) typoTermsFor(w string) []string {
	if !loadLexicon().unknown(w) {
		return nil
	}
	return ix.typoTerms(stem(w))
}

func TestTypoTermsBounded(t *testing.T) {
	ix := NewIndex()
	var docs []Doc
	for _, n := range []string{"cart", "carts", "cards", "carte", "carta", "carto", "cargo"} {
		docs = append(docs, Doc{Tool: n + "_tool", Description: n})
	}
	ix.SetServer("s", docs)
	got := ix.typoTerms("cartz")
	if len(got) == 0 || len(got) > maxTypoTerms {
		t.Fatalf("typoTerms(cartz) = %v, want 1 to %d terms", got, maxTypoTerms)
	}
	if !slices.Contains(got, "cart") {
		t.Errorf("typoTerms(cartz) = %v, want cart among them", got)
	}
}

func TestLexiconKnowsEnglishWords(t *testing.T) {
	lx := loadLexicon()
	for _, w := range []string{"delete", "deleted", "tickets", "invoices", "archive", "recently",
		"yesterday", "copies", "running", "wrote", "aa", "zyrian"} {
		if lx.unknown(w) {
			t.Errorf("%q is unknown to the lexicon", w)
		}
	}
	for _, w := range []string{"serach", "repositroies", "kubectl", "zzzz", "a", ""} {
		if !lx.unknown(w) {
			t.Errorf("%q is known to the lexicon", w)
		}
	}
}
