package search

import (
	_ "embed"
	"slices"
	"strings"
	"sync"
)

//go:generate go run ./internal/wordnetgen -out wordnet.txt

// wordnetTable is the lexical table generated from WordNet 3.0 (see internal/wordnetgen and
// WORDNET-LICENSE): "s word synonyms...", "m irregular-form base" and "w word" (another
// common word) lines.
//
//go:embed wordnet.txt
var wordnetTable string

// lexicon is the parsed WordNet table: stemmed synonyms and irregular forms. It is parsed on
// first use, not at package load, so that a process that never searches does not pay for it.
type lexicon struct {
	// syn maps a word to the stemmed terms of its common senses' synonyms. It is keyed by
	// the word, not its stem, because unrelated words share stems ("tides" and "tidings").
	syn map[string][]string
	// byStem maps a stem to the shortest word of the table with that stem, the likeliest
	// base form of an inflection the table does not list ("tides" finds "tide").
	byStem map[string]string
	// base maps an irregular inflection ("wrote") to its base form ("write").
	base map[string]string
	// words are the other common English words, sorted: those with a tagged sense in
	// WordNet that have no synonyms line (adjectives and adverbs mostly).
	words []string
}

// synonyms returns the stemmed synonyms of a query word: of the word itself when the table
// lists it, otherwise of the table's word with the same stem.
func (lx *lexicon) synonyms(word string) []string {
	if s, ok := lx.syn[word]; ok {
		return s
	}
	return lx.syn[lx.byStem[stem(word)]]
}

// unknown reports whether the table knows neither word nor a word with its stem: then it is
// no English word of WordNet's common senses, most likely a name or a misspelling.
func (lx *lexicon) unknown(word string) bool {
	if _, ok := lx.syn[word]; ok {
		return false
	}
	if _, ok := lx.base[word]; ok {
		return false
	}
	if _, ok := lx.byStem[stem(word)]; ok {
		return false
	}
	_, found := slices.BinarySearch(lx.words, word)
	return !found
}

var loadLexicon = sync.OnceValue(func() *lexicon { return parseLexicon(wordnetTable) })

func parseLexicon(table string) *lexicon {
	lx := &lexicon{syn: make(map[string][]string, 14000), byStem: make(map[string]string, 14000),
		base: make(map[string]string, 6000)}
	for line := range strings.SplitSeq(table, "\n") {
		if len(line) < 2 || line[0] == '#' {
			continue
		}
		if line[0] == 'w' {
			lx.words = append(lx.words, line[2:])
			continue
		}
		fs := strings.Fields(line[2:])
		if len(fs) < 2 {
			continue
		}
		switch line[0] {
		case 'm':
			lx.base[fs[0]] = fs[1]
		case 's':
			w, ws := fs[0], stem(fs[0])
			if b, ok := lx.byStem[ws]; !ok || len(w) < len(b) || (len(w) == len(b) && w < b) {
				lx.byStem[ws] = w
			}
			for _, s := range fs[1:] {
				if _, stop := stopwords[s]; stop {
					continue
				}
				if st := stem(s); st != ws && !contains(lx.syn[w], st) {
					lx.syn[w] = append(lx.syn[w], st)
				}
			}
		}
	}
	slices.Sort(lx.words) // already sorted by the generator; cheap to make sure
	return lx
}
