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
	// word holds the pieces of the current run of letters and digits; most words have few.
	var buf [16]span
	word := buf[:0]
	cur := span{start: -1}
	apos := false // the current word holds an apostrophe to drop
	var prev rune
	flushPiece := func(end int) {
		if cur.start >= 0 {
			cur.end = end
			word = append(word, cur)
			cur.start = -1
		}
	}
	flushWord := func(end int) {
		flushPiece(end)
		if len(word) > 0 {
			out = appendWord(out, s, word, apos)
			word = word[:0]
		}
		apos = false
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		next, nsize := utf8.DecodeRuneInString(s[i+size:])
		switch {
		case isApostrophe(r) && cur.start >= 0 && cur.kind == kindAlpha && nsize > 0 && isLetter(next):
			// Stays inside the piece ("what's"); token drops it.
			apos = true
		case isDigit(r):
			if cur.start >= 0 && cur.kind != kindDigit {
				flushPiece(i)
			}
			if cur.start < 0 {
				cur = span{start: i, kind: kindDigit}
			}
			cur.runes++
		case isLetter(r) || (isMark(r) && cur.start >= 0):
			if cur.start >= 0 && (cur.kind == kindDigit || camelBoundary(prev, r, next, s[i+size+nsize:])) {
				flushPiece(i)
			}
			if cur.start < 0 {
				cur = span{start: i, kind: kindAlpha}
			}
			if !isMark(r) {
				cur.runes++
			}
		default:
			flushWord(i)
		}
		prev = r
		i += size
	}
	flushWord(len(s))
	return out
}

type pieceKind uint8

const (
	kindAlpha pieceKind = iota
	kindDigit
)

// span is one piece of a word: a run of letters or of digits, by byte offsets into the
// tokenised string.
type span struct {
	start, end int
	kind       pieceKind
	runes      int // letters or digits, not counting combining marks
}

func isApostrophe(r rune) bool { return r == '\'' || r == '\u2019' }

// camelBoundary reports whether a new piece starts at r, a letter that follows the letter
// prev; next is the rune after r and rest the text after next.
func camelBoundary(prev, r, next rune, rest string) bool {
	if isMark(r) {
		return false
	}
	if isUpper(r) && !isUpper(prev) && !isMark(prev) {
		// "createIssue": lower (or caseless) to upper.
		return true
	}
	if isUpper(prev) && isUpper(r) && isLower(next) {
		// "HTTPServer": the last upper of a run starts the next word, except for a plural
		// "s" ending the word ("URLs", "IDs").
		if next == 's' {
			if after, _ := utf8.DecodeRuneInString(rest); !isLower(after) {
				return false
			}
		}
		return true
	}
	return false
}

// Rune classes with a fast path for ASCII, which is almost all of what tools are named and
// described in.
func isLetter(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z'
	}
	return unicode.IsLetter(r)
}

func isDigit(r rune) bool {
	if r < utf8.RuneSelf {
		return '0' <= r && r <= '9'
	}
	return unicode.IsDigit(r)
}

func isMark(r rune) bool { return r >= utf8.RuneSelf && unicode.IsMark(r) }

func isUpper(r rune) bool {
	if r < utf8.RuneSelf {
		return 'A' <= r && r <= 'Z'
	}
	return unicode.IsUpper(r)
}

func isLower(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z'
	}
	return unicode.IsLower(r)
}

// appendWord appends the lower-cased tokens of one word of s to out, joining a single letter
// to the digits after it ("s3", "v2") and a single letter after such a join ("k8s",
// "i18n"). The pieces of a word are contiguous in s, so a token is a substring of it.
func appendWord(out []string, s string, word []span, apos bool) []string {
	start := word[0].start
	joined := false // the token so far is a letter joined to digits
	for i := 1; i < len(word); i++ {
		p, last := word[i], word[i-1]
		join := false
		switch {
		case p.kind == kindDigit && last.kind == kindAlpha && last.runes == 1 && !joined:
			join = true
		case p.kind == kindAlpha && p.runes == 1 && last.kind == kindDigit && joined:
			join = true
		}
		if !join {
			out = append(out, token(s[start:last.end], apos))
			start = p.start
		}
		joined = join
	}
	return append(out, token(s[start:word[len(word)-1].end], apos))
}

// token lower-cases t and drops its apostrophes; without either to do it returns t itself,
// so tokenising lower-case ASCII allocates only the result slice. A clitic after the last
// apostrophe ('d, 'll, 're, 've, 'm) goes with it: it is a word of its own ("would", "will",
// "are", "have", "am"), and joined it made another word ("I'd" read as "id", an identifier;
// "we'll" as "well"). "n't" stays joined, for the negators ("isnt"), and so does "'s".
func token(t string, apos bool) string {
	if apos {
		if i := strings.LastIndexFunc(t, isApostrophe); i > 0 {
			_, size := utf8.DecodeRuneInString(t[i:])
			switch strings.ToLower(t[i+size:]) {
			case "d", "ll", "re", "ve", "m":
				t = t[:i]
			}
		}
		t = strings.Map(func(r rune) rune {
			if isApostrophe(r) {
				return -1
			}
			return r
		}, t)
	}
	return strings.ToLower(t)
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
	"just", "about", "also", "any", "here", "hey", "hi", "give", "provides", "provide",
	"allows", "allow", "given", "specified", "specific", "whether", "when", "where", "has",
	"have", "had", "may", "might", "must", "not", "no", "s", "t", "e", "g", "eg", "ie", "etc",
	// Function words and fillers of spoken requests, from the common English stopword lists.
	"yet", "already", "really", "actually", "anything", "something", "whatever", "quite",
	"rather", "very", "too", "still", "even", "again", "ever", "else", "once", "such", "only",
	"either", "neither", "nor", "however", "though", "although", "because", "while", "whose",
	"why", "am", "being", "his", "her", "hers", "him", "he", "she", "myself", "yourself",
	"ourselves", "themselves", "itself", "herself", "himself", "ok", "okay", "thanks", "thank",
	"kindly", "maybe", "quick", "quickly", "somehow", "basically", "roughly", "carefully",
	// Negated auxiliaries, as Tokenize leaves them ("isn't" is "isnt"); the index reads the
	// negation itself (see negators).
	"isnt", "arent", "wasnt", "werent", "dont", "doesnt", "didnt", "havent", "hasnt", "hadnt",
	"cant", "cannot", "wont", "wouldnt", "shouldnt", "couldnt", "never",
	// Indefinite pronouns: "forget everything about Bob" asks for no server or tool that
	// says "everything".
	"everything", "everyone", "everybody", "someone", "somebody", "anyone", "anybody",
	"nothing", "nobody", "everywhere", "somewhere", "anywhere", "nowhere",
	// Adverbs of degree and certainty say how much or how sure, not what is asked for
	// ("wipe it completely" asked for a chart whose description says "completely").
	"completely", "totally", "entirely", "fully", "absolutely", "utterly", "literally",
	"simply", "definitely", "truly", "extremely", "anymore", "perhaps", "probably", "somewhat",
	// A verb's particle alone ("pull up", "send up"): its phrase (WordNet's "look up") and
	// its compound ("backup", "setup") are still read from the words as written.
	"up",
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
// (-s, -es, -ies), -ing and -ed, a final silent -e and a final -y after a consonant, British
// -ise spellings, and the two noun endings that most often name a tool's action, -tion/-sion
// and -ment. It conflates "create", "creates", "created", "creating" and "creation" (all
// "creat"), "query" and "queries" ("queri"), "run" and "running", "deploy" and "deployment".
// It is deliberately cruder and shyer than Porter's stemmer, so unrelated words rarely meet.
// Words of three letters or fewer, words with digits and non-ASCII words are returned
// unchanged, and so are the words WordNet lists as nouns that are no plural (falsePlural).
func stem(w string) string {
	if len(w) <= 3 || !isASCIILower(w) {
		return w
	}
	// British spellings: "summarise", "visualising" as "summarize", "visualizing".
	for _, suf := range []string{"isations", "isation", "ising", "ised", "ises", "ise"} {
		if strings.HasSuffix(w, suf) && len(w)-len(suf) >= 3 {
			w = w[:len(w)-len(suf)] + "iz" + suf[2:]
			break
		}
	}
	// Plurals, but not the nouns that only look like one ("news", "series").
	switch {
	case strings.HasSuffix(w, "s") && falsePlural(w):
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
	case (strings.HasSuffix(w, "tion") || strings.HasSuffix(w, "sion")) && len(w)-3 >= 5:
		w = w[:len(w)-3] // "creation" -> "creat", "deletion" -> "delet"; "version" stays
	case strings.HasSuffix(w, "ment") && len(w)-4 >= 5:
		w = w[:len(w)-4] // "deployment" -> "deploy"; "comment", "document" stay
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
