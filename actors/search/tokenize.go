package search

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Tokenize splits s into lower-case words. Any rune that is neither a letter, a mark nor a
// digit separates words, so snake_case, kebab-case, dotted and spaced names all split; inside
// a word, camelCase and PascalCase boundaries split too ("createIssue", "CreateIssue" and
// "create_issue" all give "create", "issue"), an upper-case run keeps together ("HTTPServer"
// gives "http", "server"; "URLs" gives "urls") and letters split from digits ("sha256" gives
// "sha", "256"). A single letter stays joined to the digits next to it, because such words are
// names rather than a word plus a number: "s3", "v2", "k8s", "i18n". Apostrophes inside a word
// are dropped ("what's" gives "whats") so that contractions do not leave stray letters.
//
// Tokenize neither stems nor removes stopwords; the index does that on top of it.
func Tokenize(s string) []string {
	var out []string
	// word collects the pieces of one run of letters and digits.
	var word []piece
	var cur []rune
	var curKind pieceKind

	flushPiece := func() {
		if len(cur) > 0 {
			word = append(word, piece{runes: cur, kind: curKind})
			cur = nil
		}
	}
	flushWord := func() {
		flushPiece()
		if len(word) > 0 {
			out = appendWord(out, word)
			word = word[:0]
		}
	}

	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case isApostrophe(r) && len(cur) > 0 && curKind == kindAlpha && i+1 < len(rs) && unicode.IsLetter(rs[i+1]):
			// Joins the two halves of a contraction into one piece.
			continue
		case unicode.IsDigit(r):
			if len(cur) > 0 && curKind != kindDigit {
				flushPiece()
			}
			curKind = kindDigit
			cur = append(cur, r)
		case unicode.IsLetter(r) || (unicode.IsMark(r) && len(cur) > 0):
			if len(cur) > 0 && curKind == kindDigit {
				flushPiece()
			}
			if len(cur) > 0 && camelBoundary(rs, i) {
				flushPiece()
			}
			curKind = kindAlpha
			cur = append(cur, r)
		default:
			flushWord()
		}
	}
	flushWord()
	return out
}

type pieceKind uint8

const (
	kindAlpha pieceKind = iota
	kindDigit
)

type piece struct {
	runes []rune
	kind  pieceKind
}

func isApostrophe(r rune) bool { return r == '\'' || r == '\u2019' }

// camelBoundary reports whether a new piece starts at rs[i], a letter that follows another
// letter.
func camelBoundary(rs []rune, i int) bool {
	prev, r := rs[i-1], rs[i]
	if unicode.IsMark(r) {
		return false
	}
	if unicode.IsUpper(r) && !unicode.IsUpper(prev) && !unicode.IsMark(prev) {
		// "createIssue": lower (or caseless) to upper.
		return true
	}
	if unicode.IsUpper(prev) && unicode.IsUpper(r) && i+1 < len(rs) && unicode.IsLower(rs[i+1]) {
		// "HTTPServer": the last upper of a run starts the next word, except for a plural
		// "s" ending the word ("URLs", "IDs").
		if rs[i+1] == 's' && (i+2 >= len(rs) || !unicode.IsLower(rs[i+2])) {
			return false
		}
		return true
	}
	return false
}

// appendWord lower-cases the pieces of one word and appends them to out, joining a single
// letter to the digits after it ("s3", "v2") and a single letter after such a join ("k8s",
// "i18n").
func appendWord(out []string, word []piece) []string {
	var b strings.Builder
	joined := false // b holds a letter joined to digits
	for i, p := range word {
		join := false
		if i > 0 {
			last := word[i-1]
			switch {
			case p.kind == kindDigit && last.kind == kindAlpha && len(last.runes) == 1 && !joined:
				join = true
			case p.kind == kindAlpha && len(p.runes) == 1 && last.kind == kindDigit && joined:
				join = true
			}
		}
		if !join && b.Len() > 0 {
			out = append(out, b.String())
			b.Reset()
		}
		joined = join
		for _, r := range p.runes {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

// stopwords are dropped from queries and documents: they say nothing about which tool is
// meant. Verbs and quantifiers that name operations ("list", "all", "new") are not here.
var stopwords = setOf(
	"a", "an", "the", "of", "to", "in", "on", "for", "by", "with", "and", "or", "is", "are",
	"was", "were", "be", "been", "it", "its", "this", "that", "these", "those", "from", "at",
	"as", "into", "onto", "me", "my", "mine", "i", "im", "you", "your", "we", "our", "us", "can",
	"could", "would", "should", "will", "shall", "please", "what", "whats", "which", "who",
	"whom", "how", "do", "does", "did", "done", "some", "there", "their", "them", "they", "then",
	"than", "if", "so", "via", "using", "use", "want", "wanna", "need", "like", "let", "lets",
	"just", "about", "also", "any", "here", "hey", "hi", "tell", "give", "provides", "provide",
	"allows", "allow", "given", "specified", "specific", "whether", "when", "where", "has",
	"have", "had", "may", "might", "must", "not", "no", "s", "t", "e", "g", "eg", "ie", "etc",
)

// serverStopwords are dropped from server names only, where they are packaging noise
// ("mcp-server-git" is about git).
var serverStopwords = setOf("mcp", "server", "modelcontextprotocol", "npm", "npx")

func setOf(words ...string) map[string]struct{} {
	m := make(map[string]struct{}, len(words))
	for _, w := range words {
		m[w] = struct{}{}
	}
	return m
}

// terms turns text into index terms: tokens without stopwords, stemmed. extraStop, if not
// nil, names more words to drop.
func terms(s string, extraStop map[string]struct{}) []string {
	toks := Tokenize(s)
	out := toks[:0]
	for _, t := range toks {
		if _, ok := stopwords[t]; ok {
			continue
		}
		if _, ok := extraStop[t]; ok {
			continue
		}
		out = append(out, stem(t))
	}
	return out
}

// stem reduces an English word to a stem shared by its common inflections, lightly: plurals
// (-s, -es, -ies), -ing and -ed, a final silent -e and a final -y after a consonant. It
// conflates "create", "creates", "created" and "creating" (all "creat"), "query" and
// "queries" ("queri"), "run" and "running". It is deliberately cruder than Porter's stemmer:
// it never touches derivational suffixes, so unrelated words rarely meet. Words of three
// letters or fewer, words with digits and non-ASCII words are returned unchanged.
func stem(w string) string {
	if len(w) <= 3 || !isASCIILower(w) {
		return w
	}
	// Plurals.
	switch {
	case strings.HasSuffix(w, "sses"):
		w = w[:len(w)-2]
	case strings.HasSuffix(w, "ies") && len(w) > 4:
		w = w[:len(w)-2] // "queries" -> "queri", "y" -> "i" below gives the same for "query"
	case strings.HasSuffix(w, "xes") || strings.HasSuffix(w, "ches") ||
		strings.HasSuffix(w, "shes") || strings.HasSuffix(w, "zes"):
		w = w[:len(w)-2]
	case strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") &&
		!strings.HasSuffix(w, "us") && !strings.HasSuffix(w, "is"):
		w = w[:len(w)-1]
	}
	// -ing and -ed, only when a real stem with a vowel remains ("string", "need" stay).
	suffixed := false
	switch {
	case strings.HasSuffix(w, "ing") && len(w) >= 6 && hasVowel(w[:len(w)-3]):
		w = w[:len(w)-3]
		suffixed = true
	case strings.HasSuffix(w, "ed") && !strings.HasSuffix(w, "eed") && len(w) >= 5 &&
		hasVowel(w[:len(w)-2]) && !edExceptions[w]:
		w = w[:len(w)-2]
		suffixed = true
	}
	if suffixed {
		// "running" -> "runn" -> "run"; not for l, s, z ("calling", "passed", "buzzing").
		n := len(w)
		if n >= 4 && w[n-1] == w[n-2] && !isVowel(w[n-1]) && !strings.ContainsRune("lsz", rune(w[n-1])) {
			w = w[:n-1]
		}
	}
	// A final silent e, so "create" meets "creat(ing)".
	if n := len(w); n >= 4 && w[n-1] == 'e' {
		w = w[:n-1]
	}
	// A final y after a consonant, so "query" meets "queri(es)".
	if n := len(w); n >= 4 && w[n-1] == 'y' && !isVowel(w[n-2]) {
		w = w[:n-1] + "i"
	}
	return w
}

// edExceptions end in "ed" without being past tenses.
var edExceptions = map[string]bool{"embed": true, "hundred": true, "sacred": true}

func isASCIILower(w string) bool {
	for i := 0; i < len(w); i++ {
		if w[i] < 'a' || w[i] > 'z' {
			return false
		}
	}
	return utf8.ValidString(w)
}

func isVowel(c byte) bool { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' }

func hasVowel(w string) bool {
	for i := 0; i < len(w); i++ {
		if isVowel(w[i]) || (i > 0 && w[i] == 'y') {
			return true
		}
	}
	return false
}
