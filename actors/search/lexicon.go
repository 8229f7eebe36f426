package search

import (
	_ "embed"
	"strings"
	"sync"
	"sync/atomic"
)

//go:generate go run ./internal/wordnetgen -out wordnet.txt

// wordnetTable is the lexical table generated from WordNet 3.0 (see internal/wordnetgen and
// WORDNET-LICENSE): "s word synonyms...", "k word" (a noun that looks like a plural and is
// none), "m irregular-form base" and "w word" (another English word) lines.
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
	// words is the table's block of "w word" lines, sorted, the other English words: kept
	// as the embedded text and searched in place (wordIn), which costs no memory.
	words string
}

// synonyms returns the stemmed synonyms of a query word: of the word itself when the table
// lists it, otherwise of the table's word with the same stem.
func (lx *lexicon) synonyms(word string) []string {
	if s, ok := lx.syn[word]; ok {
		return s
	}
	return lx.syn[lx.byStem[stem(word)]]
}

// unknown reports whether word is no English word that WordNet lists, in any of its
// inflections ("tickets", "deleted", "wrote"): then it is most likely a name or a
// misspelling.
func (lx *lexicon) unknown(word string) bool {
	if _, ok := lx.base[word]; ok {
		return false
	}
	if _, ok := lx.byStem[stem(word)]; ok {
		return false
	}
	for _, w := range baseForms(word) {
		if _, ok := lx.syn[w]; ok || wordIn(lx.words, w) {
			return false
		}
	}
	return true
}

// isWord reports whether word is an English word that WordNet lists, or an inflection of
// one ("files", "wrote"), taken as written: unlike unknown, not by its stem, so that a word
// being typed ("fil", "creat") is not one.
func (lx *lexicon) isWord(word string) bool {
	if _, ok := lx.base[word]; ok {
		return true
	}
	for _, w := range baseForms(word) {
		if _, ok := lx.syn[w]; ok || wordIn(lx.words, w) {
			return true
		}
	}
	return false
}

// baseForms returns word and the base forms a regular inflection of it may have: "tickets"
// "ticket", "boxes" "box", "copies" "copy", "deleted" "delete" and "delet", "running" "run".
func baseForms(word string) []string {
	out := []string{word}
	add := func(suffix, repl string) {
		if b, ok := strings.CutSuffix(word, suffix); ok && len(b) >= 2 {
			out = append(out, b+repl)
			if n := len(b); n >= 3 && b[n-1] == b[n-2] && repl == "" {
				out = append(out, b[:n-1]) // "running", "stopped"
			}
		}
	}
	add("s", "")
	add("es", "")
	add("ies", "y")
	add("ed", "")
	add("ed", "e")
	add("d", "")
	add("ied", "y")
	add("ing", "")
	add("ing", "e")
	add("er", "")
	add("est", "")
	add("ly", "")
	return out
}

// falsePluralLines is the table's block of "k word" lines: the nouns that look like a
// plural and are none ("news", "series"). The stemmer asks it of every word it would strip
// an -s from, at indexing too, so it is found in the embedded text once and searched in
// place rather than parsed with the rest of the lexicon.
var falsePluralLines = sync.OnceValue(func() string {
	start := strings.Index(wordnetTable, "\nk ")
	if start < 0 {
		return ""
	}
	end := strings.Index(wordnetTable[start+1:], "\nm ")
	if end < 0 {
		return wordnetTable[start+1:]
	}
	return wordnetTable[start+1 : start+1+end]
})

// falsePlural reports whether word is a noun that only looks like a plural ("news" is not
// "new"s).
func falsePlural(word string) bool { return lineIn(falsePluralLines(), "k ", word) }

// wordIn reports whether block, sorted "w word" lines, holds word, by binary search over
// its lines.
func wordIn(block, word string) bool { return lineIn(block, "w ", word) }

// lineIn reports whether block, sorted lines of prefix and a word, holds word, by binary
// search over its lines.
func lineIn(block, prefix, word string) bool {
	lo, hi := 0, len(block)
	for lo < hi {
		mid := (lo + hi) / 2
		// The line that mid falls in.
		start := strings.LastIndexByte(block[:mid], '\n') + 1
		end := strings.IndexByte(block[mid:], '\n')
		if end < 0 {
			end = len(block)
		} else {
			end += mid
		}
		line := block[start:end]
		w := strings.TrimPrefix(line, prefix)
		switch {
		case w == word:
			return true
		case w < word:
			lo = end + 1
		default:
			hi = start
		}
	}
	return false
}

var loadLexicon = sync.OnceValue(func() *lexicon {
	lexiconParsed.Store(true)
	return parseLexicon(wordnetTable)
})

// lexiconParsed reports whether this process has parsed the table (TestLexiconWaitsForTools).
var lexiconParsed atomic.Bool

func parseLexicon(table string) *lexicon {
	lx := &lexicon{syn: make(map[string][]string, 14000), byStem: make(map[string]string, 14000),
		base: make(map[string]string, 6000)}
	for line := range strings.SplitSeq(table, "\n") {
		if len(line) < 2 || line[0] == '#' {
			continue
		}
		if line[0] == 'w' {
			// The "w" lines sort last: the rest of the table is their block.
			at := strings.Index(table, "\nw ")
			lx.words = table[at+1:]
			break
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
	return lx
}
