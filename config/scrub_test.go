package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestScrubberScrub(t *testing.T) {
	s := NewScrubber("s3cr3t-value", "s3cr3t", "abc", "", "tok en/&x", "quo\"te\n")
	tests := []struct{ name, in, want string }{
		{"value anywhere", "exit: token=s3cr3t-value!", "exit: token=" + Redacted + "!"},
		{"longest value wins", "s3cr3t-value and s3cr3t", Redacted + " and " + Redacted},
		{"repeated", "s3cr3ts3cr3t", Redacted},
		{"short value left in free text", "abc exit status 1", "abc exit status 1"},
		{"query-escaped form", "tok+en%2F%26x", Redacted},
		{"path-escaped form", "tok%20en%2F&x", Redacted},
		{"Go-quoted form", `command "quo\"te\n" not found`, `command "` + Redacted + `" not found`},
		{"URL query values of any length", `Post "http://127.0.0.1:1/mcp?token=abc&x=1": refused`,
			`Post "http://127.0.0.1:1/mcp?token=` + Redacted + `&x=` + Redacted + `": refused`},
		{"URL password", "dial https://me:pw@host/p failed", "dial https://me:" + Redacted + "@host/p failed"},
		{"lone user name is a token", "https://ghp_x@github.com/x", "https://" + Redacted + "@github.com/x"},
		{"URL without credentials", "see https://host/a/b#frag", "see https://host/a/b#frag"},
		{"URL at the start, another after", "http://h/?a=b then\tsse://u:p@h/x",
			"http://h/?a=" + Redacted + " then\tsse://u:" + Redacted + "@h/x"},
		{"no scheme before ://", ":// ://?a=b", ":// ://?a=b"},
		{"quoted URL", `Get 'https://h/?k=v'`, `Get 'https://h/?k=` + Redacted + `'`},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Scrub(tt.in); got != tt.want {
				t.Errorf("Scrub(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestScrubberOverlappingValues(t *testing.T) {
	// "zzab" starts before "abcdXYZW" and overlaps it: neither may leave a piece behind.
	s := NewScrubber("abcdXYZW", "zzab")
	if got := s.Scrub("<zzabcdXYZW>"); got != "<"+Redacted+">" {
		t.Errorf("got %q", got)
	}
}

func TestNilScrubberRedactsURLsOnly(t *testing.T) {
	var s *Scrubber
	if got := s.Scrub("s3cr3t at http://u:p@h/?k=v"); got != "s3cr3t at http://u:"+Redacted+"@h/?k="+Redacted {
		t.Errorf("got %q", got)
	}
	if s.Err(nil) != nil || s.Len() != 0 {
		t.Error("nil scrubber")
	}
	if s.With("s3cr3t").Scrub("s3cr3t") != Redacted {
		t.Error("With on nil")
	}
}

func TestScrubberErr(t *testing.T) {
	s := NewScrubber("hunter22")
	cause := fmt.Errorf("call hunter22: %w", context.DeadlineExceeded)
	err := s.Err(cause)
	if strings.Contains(err.Error(), "hunter22") || !strings.Contains(err.Error(), Redacted) {
		t.Errorf("Err = %q", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("the cause is lost")
	}
	var ref *ReferenceError
	if !errors.As(s.Err(fmt.Errorf("x: %w", &ReferenceError{Kind: RefSecret, Name: "N"})), &ref) || ref.Name != "N" {
		t.Error("errors.As through a scrubbed error")
	}
	if s.Err(nil) != nil {
		t.Error("Err(nil) != nil")
	}
	if again := s.Err(err); again != err {
		t.Error("scrubbing a scrubbed error wraps it again")
	}
}

func TestScrubberNeverPrintsItsValues(t *testing.T) {
	s := NewScrubber("hunter22-value")
	type msg struct {
		Scrub *Scrubber
		scrub *Scrubber
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "s", s, "m", msg{s, s})
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "s", s, "m", msg{s, s})
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s),
		fmt.Sprintf("%+v", msg{s, s}), fmt.Sprintf("%v", *s), logged.String()} {
		if strings.Contains(out, "hunter22") {
			t.Errorf("printed a value: %s", out)
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://h/mcp", "https://h/mcp"},
		{"https://user:pass@h/mcp", "https://user:" + Redacted + "@h/mcp"},
		{"https://user:p@ss@h/mcp", "https://user:" + Redacted + "@h/mcp"},
		{"https://user:@h/mcp", "https://user:@h/mcp"},
		{"https://tok@h", "https://" + Redacted + "@h"},
		{"https://h/mcp?token=abc&flag&empty=&k=${secret:T}", "https://h/mcp?token=" + Redacted + "&flag&empty=&k=${secret:T}"},
		{"https://${secret:U}:${secret:P}@h/p?a=1#frag?x=2", "https://${secret:U}:${secret:P}@h/p?a=" + Redacted + "#frag?x=2"},
		{"https://${secret:U}:lit${secret:P}@h/", "https://${secret:U}:" + Redacted + "@h/"},
		{"https://h/path@v1?x=1", "https://h/path@v1?x=" + Redacted},
		{"${secret:URL}", "${secret:URL}"},
		{"https://h/?a=" + Redacted, "https://h/?a=" + Redacted},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestURLSecrets(t *testing.T) {
	got := URLSecrets("https://u:p%40ss@h/?a=x+y%21&b=${secret:T}&c")
	want := []string{"p%40ss", "p@ss", "x+y%21", "x+y!", "x y!", "${secret:T}"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("URLSecrets = %q, want %q", got, want)
	}
	if URLSecrets("https://h/p") != nil {
		t.Error("a URL without credentials has secrets")
	}
}

func TestKeepRedactedURL(t *testing.T) {
	current := &Config{Servers: []ServerConfig{
		{Name: "a", URL: "https://me:pw@h/mcp?token=t1&token=t2&ref=${secret:R}"},
		{Name: "b", URL: "https://ghp_tok@h/"},
	}}
	t.Run("round trip", func(t *testing.T) {
		red := Redact(current)
		if red.Servers[0].URL != "https://me:"+Redacted+"@h/mcp?token="+Redacted+"&token="+Redacted+"&ref=${secret:R}" ||
			red.Servers[1].URL != "https://"+Redacted+"@h/" {
			t.Fatalf("redacted: %q %q", red.Servers[0].URL, red.Servers[1].URL)
		}
		got, errs := KeepRedacted(current, red)
		if errs != nil || got.Servers[0].URL != current.Servers[0].URL || got.Servers[1].URL != current.Servers[1].URL {
			t.Fatalf("got %q %q, %v", got.Servers[0].URL, got.Servers[1].URL, errs)
		}
	})
	t.Run("edited path and new value keep the rest", func(t *testing.T) {
		in := Redact(current)
		in.Servers[0].URL = "https://me:" + Redacted + "@h/v2/mcp?token=new&token=" + Redacted
		got, errs := KeepRedacted(current, in)
		if errs != nil || got.Servers[0].URL != "https://me:pw@h/v2/mcp?token=new&token=t2" {
			t.Fatalf("got %q, %v", got.Servers[0].URL, errs)
		}
	})
	for _, u := range []string{
		"https://other:" + Redacted + "@h/mcp",            // another user: the password is not theirs
		"https://h/mcp?missing=" + Redacted,               // no such key
		"https://h/mcp?token=a&token=b&token=" + Redacted, // no third token
	} {
		in := Redact(current)
		in.Servers[0].URL = u
		if _, errs := KeepRedacted(current, in); len(errs) != 1 || errs[0].Field != "mcpServers[0].url" {
			t.Errorf("%s: errs = %v, want one for mcpServers[0].url", u, errs)
		}
	}
}

func TestResolveScrubber(t *testing.T) {
	s := ServerConfig{Name: "x", Command: "c",
		Args:    []string{"--token=${secret:ARG}"},
		Env:     map[string]string{"A": "${secret:ENV}", "LIT": "literal-env-value", "SHORT": "${secret:S}"},
		Headers: map[string]string{"Authorization": "Bearer ${env:HDR}"},
		URL:     "https://u:${secret:PW}@h/mcp?k=${secret:S}",
	}
	secrets := map[string]string{"ARG": "arg-secret", "ENV": "env-secret", "PW": "url-password", "S": "ab"}
	got, scrub, err := s.Resolve(lookup(secrets), lookup(map[string]string{"HDR": "header-secret"}))
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != "https://u:url-password@h/mcp?k=ab" || got.Args[0] != "--token=arg-secret" {
		t.Fatalf("expanded: %+v", got)
	}
	text := strings.Join([]string{"arg-secret", "env-secret", "url-password", "literal-env-value", "Bearer header-secret", got.URL}, " ")
	clean := scrub.Scrub(text)
	for _, v := range []string{"arg-secret", "env-secret", "url-password", "literal-env-value", "header-secret", "k=ab"} {
		if strings.Contains(clean, v) {
			t.Errorf("%q survived: %s", v, clean)
		}
	}
	if _, scrub, err := s.Resolve(lookup(nil), lookup(nil)); err == nil || scrub != nil {
		t.Errorf("missing reference: %v %v", scrub, err)
	}
}

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// BenchmarkScrub scrubs a stderr-sized excerpt with a URL against a server with ten
// secrets, as every failure of such a server does once.
func BenchmarkScrub(b *testing.B) {
	var values []string
	for i := range 10 {
		values = append(values, fmt.Sprintf("secret-value-%02d-abcdef", i))
	}
	s := NewScrubber(values...)
	text := strings.Repeat("a log line of a failing child, ", 15) + `Post "https://h/mcp?token=secret-value-03-abcdef": refused`
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Scrub(text)
	}
}

// TestScrubberAdd: values added to a Scrubber in place are scrubbed by every holder of it
// and by copies made before, and With still makes an independent one.
func TestScrubberAdd(t *testing.T) {
	s := NewScrubber("first-secret")
	copyBefore := *s
	other := s.With()
	s.Add("refreshed-token-1")
	for _, sc := range []*Scrubber{s, &copyBefore} {
		if got := sc.Scrub("a first-secret b refreshed-token-1"); strings.Contains(got, "first-secret") || strings.Contains(got, "refreshed-token-1") {
			t.Errorf("not scrubbed: %s", got)
		}
	}
	if got := other.Scrub("refreshed-token-1"); got != "refreshed-token-1" {
		t.Errorf("With shared the added value: %s", got)
	}
	var nilS *Scrubber
	nilS.Add("x-value") // no place to keep it, and no panic
}
