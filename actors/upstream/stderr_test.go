package upstream

import (
	"slices"
	"strings"
	"testing"
)

// TestLineSink: stderr is passed on in whole lines, scrubbed whole (a secret split between
// two writes is still found), and a line without an end is passed on at maxStderrLine.
func TestLineSink(t *testing.T) {
	var got []string
	s := &lineSink{scrub: func(l string) string { return strings.ReplaceAll(l, "s3cret", "***") }, out: func(l []string) { got = append(got, l...) }}
	for _, w := range []string{"start tok=s3", "cret\r\n", "\n  \nsecond\nthi", "rd\n"} {
		if _, err := s.Write([]byte(w)); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"start tok=***", "second", "third"}; !slices.Equal(got, want) {
		t.Errorf("lines %q, want %q", got, want)
	}
	got = nil
	_, _ = s.Write([]byte(strings.Repeat("x", maxStderrLine+10)))
	if len(got) != 1 || len(got[0]) != maxStderrLine || len(s.partial) != 10 {
		t.Errorf("long line: %d pieces, partial %d", len(got), len(s.partial))
	}
}
