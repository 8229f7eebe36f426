package config

import (
	"regexp"
	"strings"
	"testing"
)

// TestNameMatcherAgreesWithPattern: each matcher accepts exactly what its pattern does, at
// and around the length bounds, with a bad first or later byte, and with non-ASCII input.
func TestNameMatcherAgreesWithPattern(t *testing.T) {
	patterns := []string{NamePattern, RefNamePattern, ToolNamePattern,
		`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`} // actors.TokenNamePattern, which imports config
	var inputs []string
	for n := 0; n <= 140; n++ {
		for _, fill := range []string{"a", "_", ".", "-", "Z9"} {
			s := strings.Repeat(fill, n)
			if len(s) > n {
				s = s[:n]
			}
			inputs = append(inputs, s, "x"+s, "_"+s, s+" ", s+"é", s+"/", "-"+s)
		}
	}
	inputs = append(inputs, "a\nb", "ab\n", "\nab", "é", "a:b", "a b")
	for _, p := range patterns {
		want := regexp.MustCompile(p)
		got := MustNameMatcher(p)
		for _, s := range inputs {
			if got.MatchString(s) != want.MatchString(s) {
				t.Errorf("%s on %q (%d bytes): matcher %v, regexp %v", p, s, len(s), got.MatchString(s), want.MatchString(s))
			}
		}
	}
}

// TestNameMatcherRefusesOtherPatterns: a pattern it cannot take panics at init rather than
// matching something else.
func TestNameMatcherRefusesOtherPatterns(t *testing.T) {
	for _, p := range []string{`^[a-z]+$`, `^(ab|c){0,3}$`, `^[a][b][c]{0,3}$`, `^[a]{2,5}$`, `[a]{0,3}$`} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", p)
				}
			}()
			MustNameMatcher(p)
		}()
	}
}

// TestNameMatcherIsSmall: a matcher compiles to a small program, where the pattern itself
// compiles into a copy of its class per count (the reason NameMatcher exists). Allocations,
// not time, so that the test does not depend on the machine.
func TestNameMatcherIsSmall(t *testing.T) {
	for _, p := range []string{NamePattern, RefNamePattern, ToolNamePattern} {
		full := testing.AllocsPerRun(5, func() { regexp.MustCompile(p) })
		small := testing.AllocsPerRun(5, func() { MustNameMatcher(p) })
		if small > 60 || small*10 > full {
			t.Errorf("%s: the matcher allocates %.0f times, the regexp %.0f", p, small, full)
		}
	}
}
