package search

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTokenize(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"create_issue", []string{"create", "issue"}},
		{"createIssue", []string{"create", "issue"}},
		{"create-issue", []string{"create", "issue"}},
		{"CreateIssue", []string{"create", "issue"}},
		{"create.issue", []string{"create", "issue"}},
		{"create issue", []string{"create", "issue"}},
		{"CREATE_ISSUE", []string{"create", "issue"}},
		{"github:create_issue", []string{"github", "create", "issue"}},
		{"HTTPServer", []string{"http", "server"}},
		{"getHTTPResponse", []string{"get", "http", "response"}},
		{"getURLs", []string{"get", "urls"}},
		{"listIDs", []string{"list", "ids"}},
		{"sha256", []string{"sha", "256"}},
		{"base64_encode", []string{"base", "64", "encode"}},
		{"EC2Instance", []string{"ec", "2", "instance"}},
		{"s3_list_buckets", []string{"s3", "list", "buckets"}},
		{"listS3Buckets", []string{"list", "s3", "buckets"}},
		{"apiV2", []string{"api", "v2"}},
		{"k8s_get_pods", []string{"k8s", "get", "pods"}},
		{"i18n", []string{"i18n"}},
		{"get2FACode", []string{"get", "2", "fa", "code"}},
		{"what's new", []string{"whats", "new"}},
		{"don’t", []string{"dont"}},
		{"isn't", []string{"isnt"}},
		{"I'd like it", []string{"i", "like", "it"}},
		{"we’ll see, you're done, I've it, I'm in", []string{"we", "see", "you", "done", "i", "it", "i", "in"}},
		{"Größe ändern", []string{"größe", "ändern"}},
		{"ÉCOLE_Été", []string{"école", "été"}},
		{"naïve café", []string{"naïve", "café"}},
		{"日本語", []string{"日本語"}},
		{"  lots   of\tspace\n", []string{"lots", "of", "space"}},
		{"", nil},
		{"  __--..  ", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := Tokenize(tt.in)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Tokenize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestStem(t *testing.T) {
	// Each group must reach one stem, and words in different groups must not meet.
	groups := [][]string{
		{"create", "creates", "created", "creating", "creation"},
		{"query", "queries", "querying"},
		{"run", "runs", "running"},
		{"get", "gets", "getting"},
		{"list", "lists", "listed", "listing"},
		{"file", "files"},
		{"issue", "issues"},
		{"repository", "repositories"},
		{"index", "indexes"},
		{"branch", "branches"},
		{"process", "processes"},
		{"status", "statuses"},
		{"address", "addresses"},
		{"delete", "deleted", "deletes", "deleting", "deletion"},
		{"deploy", "deploys", "deployed", "deployment", "deployments"},
		{"attach", "attached", "attachment", "attachments"},
		{"summarize", "summarise", "summarised", "summarizing"},
		{"visualization", "visualisation"},
		{"execute", "executed", "execution"},
		{"update", "updated", "updating"},
		{"add", "adds", "added", "adding"},
		{"call", "calls", "called", "calling"},
		{"pass", "passed"},
		{"embed", "embedded", "embedding"},
		{"retry", "retries", "retried", "retrying"},
		{"copy", "copies", "copied", "copying"},
		{"string", "strings"},
		{"need", "needs"},
		{"analysis"},
		{"bus"},
		// A noun that looks like a plural and is none keeps its s (WordNet's "k" lines).
		{"new"},
		{"news"},
		{"series"},
	}
	owner := map[string]int{}
	for i, g := range groups {
		t.Run(g[0], func(t *testing.T) {
			want := stem(g[0])
			for _, w := range g[1:] {
				if got := stem(w); got != want {
					t.Errorf("stem(%q) = %q, want %q (the stem of %q)", w, got, want, g[0])
				}
			}
			if j, ok := owner[want]; ok {
				t.Errorf("stem %q shared by groups %q and %q", want, groups[j][0], g[0])
			}
			owner[want] = i
		})
	}
}

func TestStemLeavesShortAndForeignWords(t *testing.T) {
	for _, w := range []string{"s3", "k8s", "the", "bus", "größe", "日本語", "v2", "256", "version", "session", "comment", "document", "mention"} {
		if got := stem(w); got != w {
			t.Errorf("stem(%q) = %q, want it unchanged", w, got)
		}
	}
	// Stems that must keep enough of the word to stay meaningful.
	for w, want := range map[string]string{"string": "string", "using": "using", "need": "need", "status": "status"} {
		if got := stem(w); got != want {
			t.Errorf("stem(%q) = %q, want %q", w, got, want)
		}
	}
}

func TestTerms(t *testing.T) {
	tests := []struct {
		in   string
		stop map[string]struct{}
		want []string
	}{
		{"Create a new issue in the repository", nil, []string{"creat", "new", "issu", "repositori"}},
		{"what's the weather in Paris", nil, []string{"weather", "paris"}},
		{"mcp-server-git", serverStopwords, []string{"git"}},
		{"the of and", nil, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := terms(tt.in, tt.stop)
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("terms(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSynonymsAreSymmetricAndStemmed(t *testing.T) {
	for a, syns := range synonymTable() {
		for _, b := range syns {
			if !slices.Contains(synonymTable()[b], a) {
				t.Errorf("%q -> %q but not back", a, b)
			}
			if b == a {
				t.Errorf("%q is its own synonym", a)
			}
		}
	}
	if !slices.Contains(synonymTable()[stem("fetch")], stem("get")) {
		t.Errorf("fetch should stand for get; synonymTable()[fetch] = %q", synonymTable()[stem("fetch")])
	}
}

func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"create_issue", "HTTPServer", "k8s", "what's", "Größe", "日本語", "\xff\xfe", "a'", "'a", "URLs"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range Tokenize(s) {
			if tok == "" {
				t.Fatalf("Tokenize(%q) has an empty token", s)
			}
			if !strings.Contains(s, tok) && !strings.Contains(strings.ToLower(s), tok) && !strings.ContainsAny(s, "'\u2019") {
				// Tokens are lower-cased substrings, apostrophes aside; anything else is a bug.
				t.Fatalf("Tokenize(%q) invented %q", s, tok)
			}
			for _, r := range tok {
				if !isLetter(r) && !isDigit(r) && !isMark(r) {
					t.Fatalf("Tokenize(%q) = token %q with separator %q", s, tok, r)
				}
			}
			if st := stem(tok); st == "" {
				t.Fatalf("stem(%q) is empty", tok)
			}
		}
	})
}

func TestEntityWords(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"fetch https://example.com/pricing now", "fetch url example now"},
		// A host name is a URL without its scheme; its top-level domain and www say nothing.
		{"grab the HTML of www.example.com", "grab the HTML of url example"},
		{"is docs.github.io/x up?", "is url docs github up?"},
		{"mail bob@example.com", "mail email"},
		{"open README.md and main.go", "open README file md and main file go code multiple"},
		{"mail bob@example.org", "mail email"},
		{"is 10.0.5.23 in 10.0.0.0/22?", "is ip address in ip address"},
		{"what is 12*7", "what is calculate"},
		{"open notes/todo.md", "open todo file md"},
		{"list ~/Downloads", "list Downloads directory path"},
		{"merge feature/payments and origin/main, not and/or", "merge payments branch and main branch, not and/or"},
		{"plain words", "plain words"},
		{"-5 degrees", "-5 degrees temperature unit"},
		{"what's 4821 + 3377?", "what's 4821 calculate 3377?"},
		{"255 in binary and 0x1F4", "255 in binary and hexadecimal number"},
		// A content hash has digits and letters: a word of hex letters ("effaced") or a number is none.
		{"show commit a1b2c3d, not the effaced 1234567", "show commit hash, not the effaced 1234567"},
		{"days from March 3 to November 19, 2024", "days from March date 3 to November date 19, 2024"},
		{"marching on", "marching on"},
		{"since 2023-11-02 09:00", "since date time"},
		{"at 2023-11-02T09:00", "at date time"},
		{"write B2:B5 in q3.xlsx", "write cell range in q3 file xlsx spreadsheet"},
		{"look at error.png", "look at error file png image"},
		{"every .csv under data/", "every csv file csv spreadsheet under data directory path"},
		{"open a.json, b.json and .eslintrc.json", "open a file json, b file json and eslintrc file json multiple"},
		{"rename a.txt to b.txt", "rename a file txt to b file txt"},
		{"try [1,2,3].map(x => x * 2)", "try code code x * 2)"},
		{"version 1.2.3", "version version"},
		{"is 2.4.1 allowed by ^2.3.0", "is version allowed by version"},
		{"a marathon, 26.2 miles?", "a marathon, 26.2 miles? length unit"},
		{"ship 5kg", "ship 5kg weight unit"},
		{"the last 30 days", "the last 30 days time unit"},
		{"255 in binary", "255 in binary"},
		// Two-letter symbols are units after a number unless they are also words ("in").
		{"a 42 km run, 5 in a row", "a 42 km length unit run, 5 in a row"},
		// A unit named in full says what is measured without a number.
		{"38.5 C, what's that in Fahrenheit?", "38.5 C, what's that in Fahrenheit? temperature unit"},
		{"two hours studied vs score", "two hours studied vs score"},
		{"mean of 12, 15, 9", "mean of 12, 15, 9 numbers values"},
		// Quoted passages first become "text" (quotedToText).
		{"commit with the message 'handle empty cart'", "commit with the message text"},
		{`echo "ping 123" back`, "echo text back"},
		{"turn 'kitten' into 'sitting'?", "turn text into text?"},
		{"don't stage what's new", "don't stage what's new"},
		{"an 'open quote only", "an 'open quote only"},
	} {
		if got := fileNamesToWords(quotedToText(c.in)); got != c.want {
			t.Errorf("fileNamesToWords(quotedToText(%q)) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestAbbreviations(t *testing.T) {
	got := expandAbbreviations([]string{"open", "a", "pr", "in", "repo"})
	want := []string{"open", "a", "pr", "pull", "request", "in", "repo", "repository"}
	if !slices.Equal(got, want) {
		t.Errorf("expandAbbreviations = %v, want %v", got, want)
	}
	for abbr, exp := range abbreviations {
		if abbr != strings.ToLower(abbr) || strings.TrimSpace(exp) == "" {
			t.Errorf("abbreviation %q -> %q: keys are lower-case tokens, expansions words", abbr, exp)
		}
	}
}

// TestVocabularyNamesNoTool keeps the abbreviation table general: no short form or
// expansion may be the name of a server or a tool in the quality catalogues, which would
// make it a pointer to that tool rather than vocabulary.
func TestVocabularyNamesNoTool(t *testing.T) {
	names := map[string]bool{}
	for _, f := range []string{"real.json", "synthetic.json"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "test", "testdata", "catalogue", f))
		if err != nil {
			t.Fatal(err)
		}
		var tools []struct{ Server, Tool string }
		if err := json.Unmarshal(data, &tools); err != nil {
			t.Fatal(err)
		}
		for _, tl := range tools {
			names[strings.ToLower(tl.Server)] = true
			names[strings.ToLower(tl.Tool)] = true
		}
	}
	for abbr, exp := range abbreviations {
		for _, w := range append([]string{abbr}, strings.Fields(exp)...) {
			if names[w] {
				t.Errorf("abbreviation %q -> %q names a server or tool: %q", abbr, exp, w)
			}
		}
	}
}
