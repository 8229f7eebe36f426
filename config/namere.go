package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// NameMatcher matches a name pattern of the form `^[first]?[class]{min,max}$` (NamePattern,
// RefNamePattern, ToolNamePattern, and the token names' pattern): the same strings as the
// pattern, with the counted repetition checked as a length. Go's regexp compiles {0,127}
// into 127 copies of its class; four such patterns cost every start of the daemon 3 ms and
// 4,000 allocations before main ran.
type NameMatcher struct {
	re       *regexp.Regexp
	min, max int // bounds of the whole name's length in bytes (the classes are ASCII)
}

// boundedRepeat is the trailing `{min,max}$` of a name pattern.
var boundedRepeat = regexp.MustCompile(`\{(\d+),(\d+)\}\$$`)

// MustNameMatcher compiles pattern, which must be of the form NameMatcher takes (ASCII
// classes, one of them optional at the front); it panics otherwise, as regexp.MustCompile.
func MustNameMatcher(pattern string) NameMatcher {
	m := boundedRepeat.FindStringSubmatchIndex(pattern)
	if m == nil || !strings.HasPrefix(pattern, "^[") {
		panic(fmt.Sprintf("config: %q is not a bounded name pattern", pattern))
	}
	lo, _ := strconv.Atoi(pattern[m[2]:m[3]])
	hi, _ := strconv.Atoi(pattern[m[4]:m[5]])
	head := pattern[:m[0]] // `^[first][class]` or `^[class]`
	fixed := strings.Count(head, "[") - 1
	if fixed > 1 || lo > 1 || strings.ContainsAny(head, "*+?{()|") {
		panic(fmt.Sprintf("config: %q is not a bounded name pattern", pattern))
	}
	return NameMatcher{re: regexp.MustCompile(head + "*$"), min: fixed + lo, max: fixed + hi}
}

// MatchString reports whether s matches the pattern.
func (m NameMatcher) MatchString(s string) bool {
	return len(s) >= m.min && len(s) <= m.max && m.re.MatchString(s)
}
