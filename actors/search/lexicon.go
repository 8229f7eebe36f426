package search

import (
	_ "embed"
	"strings"
	"sync"
)

//go:generate go run ./internal/wordnetgen -out wordnet.txt

// wordnetTable is the lexical table generated from WordNet 3.0 (see internal/wordnetgen and
// WORDNET-LICENSE): "s word synonyms..." and "m irregular-form base" lines.
//
//go:embed wordnet.txt
var wordnetTable string

// lexicon is the parsed WordNet table: stemmed synonyms and irregular forms. It is parsed on
// first use, not at package load, so that a process that never searches does not pay for it.
type lexicon struct {
	// syn maps a stemmed term to the stemmed terms of its common senses' synonyms.
	syn map[string][]string
	// base maps an irregular inflection ("wrote") to its base form ("write").
	base map[string]string
}

var loadLexicon = sync.OnceValue(func() *lexicon {
	lx := &lexicon{syn: make(map[string][]string, 12000), base: make(map[string]string, 6000)}
	for line := range strings.SplitSeq(wordnetTable, "\n") {
		if len(line) < 2 || line[0] == '#' {
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
			w := stem(fs[0])
			for _, s := range fs[1:] {
				if _, stop := stopwords[s]; stop {
					continue
				}
				if st := stem(s); st != w && !contains(lx.syn[w], st) {
					lx.syn[w] = append(lx.syn[w], st)
				}
			}
		}
	}
	return lx
})
