package config

import (
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// MinScrubLen is the shortest value a Scrubber replaces wherever it occurs. A value of one
// to three bytes ("1", "on", "dev") occurs in ordinary words and numbers, so replacing it
// everywhere would make every message unreadable ("exit status 1" would lose its status)
// while hiding little: so short a value is no secret worth the name. Such values are still
// hidden where credentials are expected, because every URL in scrubbed text loses its
// userinfo and query values whatever their length (see RedactURL).
const MinScrubLen = 4

// Scrubber removes one server's secrets from text before it leaves the process: error
// messages, stderr excerpts and log fields. It replaces, with Redacted:
//
//   - every value a ${secret:} or ${env:} reference of the server resolved to, at least
//     MinScrubLen bytes long, wherever it occurs, also in its URL-escaped and Go-quoted
//     forms (errors quote values with %q);
//   - the userinfo and query values of the server's URL (as literal values of the same
//     length rule, so a password written into the URL is hidden where it is quoted alone);
//   - the password (or a lone user name, often a token) and query values of every URL in
//     the text, whatever their length.
//
// The nil *Scrubber is usable and does only the last. Occurrences of different values that
// overlap are replaced as one span, so no part of a longer value survives next to a
// shorter one.
//
// A Scrubber only ever grows: With makes a new one, and Add gives it more values in place
// (an OAuth refresh adds the new tokens to a live connection's Scrubber), which every
// holder of it, and every copy, sees from then on. It is safe for concurrent use. It never
// prints its values: String, GoString and LogValue say only how many it holds.
type Scrubber struct {
	// set holds the values, longest first, no repeats, each at least MinScrubLen bytes; a
	// pointer, so that copies share what Add adds.
	set *atomic.Pointer[[]string]
}

// load returns the values (nil for the nil Scrubber).
func (s *Scrubber) load() []string {
	if s == nil || s.set == nil {
		return nil
	}
	if p := s.set.Load(); p != nil {
		return *p
	}
	return nil
}

// merged returns have and the scrubbed forms of values: sorted longest first, no repeats.
func merged(have []string, values []string) []string {
	all := slices.Clone(have)
	for _, v := range values {
		for _, form := range []string{v, url.QueryEscape(v), url.PathEscape(v), quotedInner(v)} {
			if len(form) >= MinScrubLen {
				all = append(all, form)
			}
		}
	}
	slices.SortFunc(all, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(all)
}

// NewScrubber returns a Scrubber for values; values shorter than MinScrubLen are dropped
// (see MinScrubLen).
func NewScrubber(values ...string) *Scrubber {
	return (*Scrubber)(nil).With(values...)
}

// With returns a Scrubber that replaces s's values and values too. s may be nil.
func (s *Scrubber) With(values ...string) *Scrubber {
	all := merged(s.load(), values)
	n := &Scrubber{set: new(atomic.Pointer[[]string])}
	n.set.Store(&all)
	return n
}

// Add makes s replace values too, from now on, for every holder of s. It does nothing on
// the nil Scrubber (which has no place to keep them: use With).
func (s *Scrubber) Add(values ...string) {
	if s == nil || s.set == nil {
		return
	}
	for {
		old := s.set.Load()
		var have []string
		if old != nil {
			have = *old
		}
		all := merged(have, values)
		if s.set.CompareAndSwap(old, &all) {
			return
		}
	}
}

// quotedInner is v as %q writes it, without the quotes.
func quotedInner(v string) string {
	q := strconv.Quote(v)
	return q[1 : len(q)-1]
}

// Len is the number of values (forms included) s replaces.
func (s *Scrubber) Len() int {
	if s == nil {
		return 0
	}
	return len(s.load())
}

// String hides the values. It and GoString and LogValue have value receivers so that a
// copied Scrubber hides them too.
func (s Scrubber) String() string {
	return "config.Scrubber(" + strconv.Itoa(len(s.load())) + " values)"
}

// GoString hides the values from %#v.
func (s Scrubber) GoString() string { return s.String() }

// LogValue hides the values from slog.
func (s Scrubber) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Scrub returns text with the values and URL credentials replaced (see Scrubber).
func (s *Scrubber) Scrub(text string) string {
	if text == "" {
		return text
	}
	if values := s.load(); len(values) > 0 {
		text = replaceValues(values, text)
	}
	return redactURLsInText(text)
}

// redactURLsInText applies RedactURL to every URL in free text: a scheme (a letter, then
// letters, digits, '+', '.', '-'), "://" and everything up to white space, a quote or an
// angle bracket (Go's url.Error quotes the URL: Get "http://...": ...). It is written out
// rather than a regexp, which cost ten times as much on a stderr excerpt.
func redactURLsInText(text string) string {
	var b strings.Builder
	last := 0
	for i := 0; ; {
		j := strings.Index(text[i:], "://")
		if j < 0 {
			break
		}
		sep := i + j
		start := sep
		for start > last && isSchemeByte(text[start-1]) {
			start--
		}
		for start < sep && !isLetter(text[start]) {
			start++
		}
		end := sep + 3
		for end < len(text) && !strings.ContainsRune(urlEnd, rune(text[end])) {
			end++
		}
		if start < sep {
			if u := RedactURL(text[start:end]); u != text[start:end] {
				b.WriteString(text[last:start])
				b.WriteString(u)
				last = end
			}
		}
		i = end
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// urlEnd are the bytes that end a URL in free text.
const urlEnd = " \t\n\r\f\v\"'<>`"

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isSchemeByte(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || c == '+' || c == '.' || c == '-'
}

// ReplaceValues returns text with only the values replaced: URLs keep their credentials
// and query values unless they are values. It is for text that is the user's own data
// (the arguments an agent passed to a tool), where a URL's query is what the agent meant
// and only the secrets must go. The nil *Scrubber returns text.
func (s *Scrubber) ReplaceValues(text string) string {
	values := s.load()
	if len(values) == 0 || text == "" {
		return text
	}
	return replaceValues(values, text)
}

// Merge returns a Scrubber that replaces the values of s and of o; either may be nil. The
// result is a new Scrubber when both have values: values added later to s or o (Add) are
// not in it.
func (s *Scrubber) Merge(o *Scrubber) *Scrubber {
	switch {
	case o.Len() == 0:
		return s
	case s.Len() == 0:
		return o
	}
	all := append(slices.Clone(s.load()), o.load()...)
	slices.SortFunc(all, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	all = slices.Compact(all)
	n := &Scrubber{set: new(atomic.Pointer[[]string])}
	n.set.Store(&all)
	return n
}

// replaceValues replaces the union of all occurrences of all values.
func replaceValues(values []string, text string) string {
	type span struct{ start, end int }
	var spans []span
	for _, v := range values {
		for i := 0; i <= len(text)-len(v); {
			j := strings.Index(text[i:], v)
			if j < 0 {
				break
			}
			spans = append(spans, span{i + j, i + j + len(v)})
			i += j + 1
		}
	}
	if len(spans) == 0 {
		return text
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	var b strings.Builder
	last := 0
	for k := 0; k < len(spans); {
		start, end := spans[k].start, spans[k].end
		for k++; k < len(spans) && spans[k].start <= end; k++ {
			end = max(end, spans[k].end)
		}
		b.WriteString(text[last:start])
		b.WriteString(Redacted)
		last = end
	}
	b.WriteString(text[last:])
	return b.String()
}

// Err returns err with its message scrubbed; nil stays nil. The result unwraps to err, so
// errors.Is and errors.As still see the cause (a context deadline, a ReferenceError); code
// that prints an unwrapped cause must scrub it again.
func (s *Scrubber) Err(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := s.Scrub(msg)
	if _, done := err.(*scrubbedError); done && clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, err: err}
}

// scrubbedError is an error whose message was scrubbed.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// urlParts is a URL split as written, without decoding: scheme ("http://", empty when the
// text has none), userinfo (user, and pass after the first ':'), the rest of the authority
// and the path, the query pairs and the fragment (with its '#').
type urlParts struct {
	scheme           string
	user, pass       string
	hasUser, hasPass bool
	hostPath         string
	query            []queryPair
	hasQuery         bool
	fragment         string
}

// queryPair is one '&'-separated piece of a query; hasEq says it had a '=' (key=value).
type queryPair struct {
	key, value string
	hasEq      bool
}

// splitURL splits raw as written. The delimiters are looked for outside ${secret:...} and
// ${env:...} references, whose "secret:" would otherwise read as a user and password, so
// that config values and resolved URLs split the same way.
func splitURL(raw string) urlParts {
	var refs []ref
	if strings.Contains(raw, "${") {
		refs, _ = scanRefs(raw)
	}
	outside := func(i int) bool {
		for _, r := range refs {
			if i >= r.start && i < r.end {
				return false
			}
		}
		return true
	}
	// index finds the first of chars in raw[from:to] outside references.
	index := func(from, to int, chars string) int {
		for i := from; i < to; i++ {
			if strings.IndexByte(chars, raw[i]) >= 0 && outside(i) {
				return i
			}
		}
		return -1
	}
	var p urlParts
	rest := 0
	if i := strings.Index(raw, "://"); i >= 0 && index(0, i, "/?#") < 0 {
		p.scheme = raw[:i+3]
		rest = i + 3
	}
	end := len(raw)
	if i := index(rest, end, "#"); i >= 0 {
		p.fragment = raw[i:]
		end = i
	}
	qEnd := end
	if i := index(rest, end, "?"); i >= 0 {
		p.hasQuery = true
		for from := i + 1; ; {
			j := index(from, end, "&")
			if j < 0 {
				j = end
			}
			p.query = append(p.query, splitPair(raw[from:j]))
			if j == end {
				break
			}
			from = j + 1
		}
		qEnd = i
	}
	if p.scheme != "" {
		authEnd := index(rest, qEnd, "/")
		if authEnd < 0 {
			authEnd = qEnd
		}
		// The last '@' ends the userinfo: a password may hold an unescaped '@'.
		at := -1
		for i := authEnd - 1; i >= rest; i-- {
			if raw[i] == '@' && outside(i) {
				at = i
				break
			}
		}
		if at >= 0 {
			p.hasUser = true
			p.user = raw[rest:at]
			if c := index(rest, at, ":"); c >= 0 {
				p.user, p.pass, p.hasPass = raw[rest:c], raw[c+1:at], true
			}
			rest = at + 1
		}
	}
	p.hostPath = raw[rest:qEnd]
	return p
}

func splitPair(s string) queryPair {
	if i := strings.IndexByte(s, '='); i >= 0 && !insideRef(s, i) {
		return queryPair{key: s[:i], value: s[i+1:], hasEq: true}
	}
	return queryPair{key: s}
}

// insideRef reports whether s[i] lies inside a reference.
func insideRef(s string, i int) bool {
	refs, _ := scanRefs(s)
	for _, r := range refs {
		if i >= r.start && i < r.end {
			return true
		}
	}
	return false
}

func (p urlParts) String() string {
	var b strings.Builder
	b.WriteString(p.scheme)
	if p.hasUser {
		b.WriteString(p.user)
		if p.hasPass {
			b.WriteByte(':')
			b.WriteString(p.pass)
		}
		b.WriteByte('@')
	}
	b.WriteString(p.hostPath)
	if p.hasQuery {
		b.WriteByte('?')
		for i, q := range p.query {
			if i > 0 {
				b.WriteByte('&')
			}
			b.WriteString(q.key)
			if q.hasEq {
				b.WriteByte('=')
				b.WriteString(q.value)
			}
		}
	}
	b.WriteString(p.fragment)
	return b.String()
}

// hidden reports whether a URL part must be redacted: it is set, and it is not just one
// reference (which reveals nothing, as in Redact).
func hidden(v string) bool { return v != "" && v != Redacted && !isExactRef(v) }

// RedactURL returns raw with its credentials replaced by Redacted: the password of its
// userinfo (or the user name when there is no password: a lone user name is often a token,
// as in https://TOKEN@host) and every query value. The rest (scheme, host, path, query
// keys, fragment) is kept as written, and so are parts that are exactly one ${secret:} or
// ${env:} reference, which reveal nothing. Text without credentials comes back unchanged.
func RedactURL(raw string) string {
	if !strings.ContainsAny(raw, "@?") {
		return raw
	}
	p := splitURL(raw)
	changed := false
	if p.hasPass && hidden(p.pass) {
		p.pass, changed = Redacted, true
	} else if p.hasUser && !p.hasPass && hidden(p.user) {
		p.user, changed = Redacted, true
	}
	for i := range p.query {
		if p.query[i].hasEq && hidden(p.query[i].value) {
			p.query[i].value, changed = Redacted, true
		}
	}
	if !changed {
		return raw
	}
	return p.String()
}

// URLSecrets returns the credential parts of a URL, as written and percent-decoded: its
// userinfo password (or lone user name) and its query values, for a Scrubber.
func URLSecrets(raw string) []string {
	if !strings.ContainsAny(raw, "@?") {
		return nil
	}
	p := splitURL(raw)
	var out []string
	add := func(v string) {
		if v == "" {
			return
		}
		out = append(out, v)
		for _, unescape := range []func(string) (string, error){url.PathUnescape, url.QueryUnescape} {
			if d, err := unescape(v); err == nil && !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	}
	if p.hasPass {
		add(p.pass)
	} else if p.hasUser {
		add(p.user)
	}
	for _, q := range p.query {
		add(q.value)
	}
	return out
}

// keepRedactedURL puts current's credentials back where incoming has Redacted: the
// password (when the user names match), a lone user name, and query values by key (the
// n-th "k=********" takes the value of current's n-th "k="). ok is false when a
// placeholder has nothing to take.
func keepRedactedURL(current, incoming string) (string, bool) {
	if !strings.Contains(incoming, Redacted) {
		return incoming, true
	}
	in, cur := splitURL(incoming), splitURL(current)
	ok := true
	switch {
	case in.hasPass && in.pass == Redacted:
		if cur.hasPass && cur.user == in.user && cur.pass != "" {
			in.pass = cur.pass
		} else {
			ok = false
		}
	case in.hasUser && !in.hasPass && in.user == Redacted:
		if cur.hasUser && !cur.hasPass && cur.user != "" {
			in.user = cur.user
		} else {
			ok = false
		}
	}
	seen := map[string]int{}
	for i, q := range in.query {
		n := seen[q.key]
		seen[q.key]++
		if !q.hasEq || q.value != Redacted {
			continue
		}
		found := false
		for _, c := range cur.query {
			if c.key != q.key {
				continue
			}
			if n > 0 {
				n--
				continue
			}
			if c.hasEq && c.value != "" {
				in.query[i].value, found = c.value, true
			}
			break
		}
		ok = ok && found
	}
	return in.String(), ok
}
