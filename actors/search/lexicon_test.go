package search

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestLexicon(t *testing.T) {
	lx := loadLexicon()
	if len(lx.syn) < 5000 || len(lx.base) < 1000 {
		t.Fatalf("lexicon has %d words and %d irregular forms; is wordnet.txt generated?", len(lx.syn), len(lx.base))
	}
	// A verb's most frequent sense and a derivation, from WordNet, not from a hand list.
	if !slices.Contains(lx.synonyms("create"), stem("make")) {
		t.Errorf("create: %v lacks make", lx.synonyms("create"))
	}
	if !slices.Contains(lx.synonyms("remember"), stem("remembrance")) {
		t.Errorf("remember: %v lacks remembrance", lx.synonyms("remember"))
	}
	// The nouns that only look like plurals, and not the plurals of nouns or the words in
	// -us, -is that read as singulars anyway.
	for w, want := range map[string]bool{"news": true, "series": true, "lens": true,
		"tickets": false, "messages": false, "status": false, "analysis": false, "new": false} {
		if got := falsePlural(w); got != want {
			t.Errorf("falsePlural(%q) = %v, want %v", w, got, want)
		}
	}
	if lx.base["wrote"] != "write" {
		t.Errorf("wrote: base %q", lx.base["wrote"])
	}
	// An inflection the table does not list finds its base word's entry, and words that
	// only share a stem do not meet: "tides" is not "tidings".
	if got := lx.synonyms("tides"); slices.Contains(got, stem("news")) {
		t.Errorf("tides: %v", got)
	}
}

func BenchmarkLexiconLoad(b *testing.B) {
	for b.Loop() {
		parseLexicon(wordnetTable)
	}
}

// TestLexiconWaitsForTools: an index with no tools, searched or not, leaves the WordNet table
// unparsed; the first tools indexed parse it. It runs in a process of its own, since any
// other test may have parsed the table already.
func TestLexiconWaitsForTools(t *testing.T) {
	if os.Getenv("SEARCH_FRESH_PROCESS") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLexiconWaitsForTools$", "-test.v")
		cmd.Env = append(os.Environ(), "SEARCH_FRESH_PROCESS=1")
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "--- PASS: TestLexiconWaitsForTools") {
			t.Fatalf("fresh process: %v\n%s", err, out)
		}
		return
	}
	ix := NewIndex()
	ix.SetServer("empty", nil)
	if hits := ix.Search("create an issue", 5); hits != nil || lexiconParsed.Load() {
		t.Fatalf("an empty index parsed the lexicon (hits %v)", hits)
	}
	ix.SetServer("github", []Doc{{Tool: "create_issue", Description: "Open a new issue"}})
	if !lexiconParsed.Load() {
		t.Fatal("indexing tools did not parse the lexicon")
	}
}
