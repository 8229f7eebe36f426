package search

import (
	"slices"
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
