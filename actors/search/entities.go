package search

import "strings"

// What a query names by example (a file, a URL, a date, a quantity, ...) and the words for
// its kind, which the index matches: see fileNamesToWords.

// fileExtensions are the extensions that make a query word a file name ("report.txt"),
// each with the word for the kind of file it names, if there is one ("q3.xlsx" is a
// spreadsheet, "error.png" an image).
var fileExtensions = map[string]string{
	"txt": "", "md": "", "json": "", "xml": "", "html": "", "css": "", "log": "", "zip": "",
	"tar": "", "gz": "", "sql": "",
	"csv": "spreadsheet", "tsv": "spreadsheet", "xls": "spreadsheet", "xlsx": "spreadsheet", "ods": "spreadsheet",
	"pdf": "document", "doc": "document", "docx": "document", "ppt": "presentation", "pptx": "presentation",
	"png": "image", "jpg": "image", "jpeg": "image", "gif": "image", "svg": "image", "webp": "image",
	"mp3": "audio", "wav": "audio", "mp4": "video",
	"go": "code", "py": "code", "js": "code", "ts": "code", "tsx": "code", "jsx": "code", "java": "code",
	"rb": "code", "rs": "code", "c": "code", "h": "code", "cpp": "code", "sh": "code",
	"yaml": "configuration", "yml": "configuration", "toml": "configuration", "ini": "configuration",
	"cfg": "configuration", "conf": "configuration",
}

// branchKinds are the prefixes of Git's branch naming conventions ("feature/payments",
// "hotfix/login") and of remote-tracking branches ("origin/main").
var branchKinds = setOf("feature", "feat", "fix", "bugfix", "hotfix", "release", "chore",
	"topic", "origin", "upstream")

// months name the months, as a date in a query writes them ("March 3", "3 Nov 2024").
var months = setOf("january", "february", "march", "april", "june", "july", "august",
	"september", "october", "november", "december", "jan", "feb", "mar", "apr", "jun", "jul",
	"aug", "sep", "sept", "oct", "nov", "dec")

// fileNamesToWords replaces what a query names by example with the word for its kind: each
// file name by its base name, "file" and its kind ("q3.xlsx" is "q3 file spreadsheet"), and
// two or more of them also by "multiple", so that "rename report.txt" asks for a file tool
// rather than one about text; a URL, or a host name without a scheme ("example.com"), by
// "url" and its host's words but its top-level domain; a path with no file's extension ("~/notes",
// "/var/log/", "data/") by its last element, "directory" and "path" (what it names is
// most often a folder); an e-mail address by "email"; an IP
// address or network by "ip address"; an arithmetic expression ("4821+3377", "2^10", "12 * 7")
// by "calculate"; a branch named by Git's conventions ("feature/payments") by its name and
// "branch"; a hexadecimal or binary literal ("0x1F4") by "hexadecimal" or "binary"
// "number"; a content hash ("a1b2c3d") by "hash"; a version ("^2.3.0") by "version"; a date ("2023-11-02", "March 3") by "date" and a time of day ("09:00") by "time";
// a spreadsheet range ("B2:B5") by "cell range"; code ("[1,2].map(x => x*2)") by "code"; a
// quantity's unit ("26.2 miles", "42 km", "5kg") and, in a query with a number, a unit named
// in full ("in Fahrenheit") also by what it measures and "unit"; and three or more
// numbers also by "numbers values".
func fileNamesToWords(q string) string {
	if !strings.ContainsAny(q, "./@:+*^=-0123456789") {
		return q
	}
	fields := strings.Fields(q)
	changed := false
	// listed: file names written as a list ("a.json, b.json and c.json"), not "a.txt to b.txt".
	listed, lastFile := false, -3
	for i, f := range fields {
		raw := f
		f = strings.TrimRight(strings.TrimLeft(f, "(\"'"), ",;:!?)\"'")
		if w, ok := entityWords(f); ok {
			if strings.Contains(w, " file") {
				if i == lastFile+1 && strings.HasSuffix(fields[lastFile], ",") ||
					i == lastFile+2 && (fields[i-1] == "and" || fields[i-1] == "&") {
					listed = true
				}
				lastFile = i
			}
			if strings.HasSuffix(raw, ",") {
				w += ","
			}
			fields[i] = w
			changed = true
		}
	}
	// Across words: an expression written with spaces, and a date in words.
	for i := 1; i+1 < len(fields); i++ {
		if isOperator(fields[i]) && isNumber(strings.TrimRight(fields[i-1], ",")) &&
			isNumber(strings.TrimRight(fields[i+1], ",?!.")) {
			fields[i] = "calculate"
			changed = true
		}
	}
	for i, f := range fields {
		if _, ok := months[strings.ToLower(strings.TrimRight(f, ",."))]; !ok {
			continue
		}
		if (i > 0 && isNumber(strings.TrimRight(fields[i-1], ",."))) ||
			(i+1 < len(fields) && isNumber(strings.TrimRight(fields[i+1], ",.?!"))) {
			fields[i] += " date"
			changed = true
		}
	}
	// Units after (or as) a quantity: "26.2 miles", "5kg".
	numbers := 0
	for i, f := range fields {
		t := strings.ToLower(strings.TrimRight(f, ",.?!;:)"))
		if isNumber(t) {
			// Not the day or year of a date ("March 3", "November 19, 2024").
			if !(i > 0 && strings.HasSuffix(fields[i-1], " date")) &&
				!(i+1 < len(fields) && strings.HasSuffix(fields[i+1], " date")) &&
				!(i > 1 && strings.HasSuffix(fields[i-2], " date")) {
				numbers++
			}
			continue
		}
		if k, ok := units[t]; ok && (len(t) > 2 || len(t) == 2 && !ambiguousUnits[t]) && i > 0 && isNumber(strings.TrimRight(fields[i-1], ",")) {
			fields[i] += " " + k + " unit"
			changed = true
			continue
		}
		// In a query with a number, a unit named in full on its own also says what is
		// measured ("38.5 C, what's that in Fahrenheit"). Without one it is more often a
		// quantity talked about ("hours studied vs score") than a measure to convert.
		if k, ok := units[t]; ok && len(t) >= minUnitName {
			fields[i] += " " + k + " unit"
			changed = true
			continue
		}
		if j := strings.IndexFunc(t, func(r rune) bool { return r < '0' || r > '9' && r != '.' }); j > 0 {
			if k, ok := units[t[j:]]; ok && isNumber(t[:j]) {
				fields[i] += " " + k + " unit"
				changed = true
			}
		}
	}
	// Three or more numbers are values to compute on ("mean of 12, 15, 9").
	if numbers >= 3 {
		fields = append(fields, "numbers values")
		changed = true
	}
	if listed {
		fields = append(fields, "multiple")
		changed = true
	}
	if !changed {
		return q
	}
	return strings.Join(fields, " ")
}

// minUnitName is the length from which a unit is named in full ("miles", "celsius"): in a
// query with a number such a word is a unit wherever it stands, shorter ones ("ft", "mile")
// only right after a number.
const minUnitName = 5

// ambiguousUnits are the two-letter units that are also common words ("5 in a row"): after a
// number they are not taken for a unit. Other two-letter symbols ("42 km", "5 kg") are.
var ambiguousUnits = map[string]bool{"in": true, "ha": true}

// units are the common units of measure, each with what it measures, as a quantity in a
// query writes them ("26.2 miles" is a length).
var units = func() map[string]string {
	m := map[string]string{}
	for kind, us := range map[string]string{
		"length":      "mm cm m km kilometer kilometers kilometre kilometres meter meters metre metres mile miles ft feet foot inch inches in yard yards yd",
		"weight":      "mg g kg gram grams kilogram kilograms lb lbs pound pounds oz ounce ounces ton tons tonne tonnes stone",
		"temperature": "c f k °c °f celsius fahrenheit kelvin degrees",
		"volume":      "ml l liter liters litre litres gallon gallons gal cup cups pint pints quart quarts floz",
		"speed":       "mph kph kmh km/h knots knot",
		"area":        "acre acres hectare hectares ha sqft sqm",
		"data":        "b kb mb gb tb kib mib gib tib bytes byte kilobytes megabytes gigabytes terabytes",
		"time":        "ms sec secs seconds minutes mins hours hrs days weeks months years",
	} {
		for _, u := range strings.Fields(us) {
			m[u] = kind
		}
	}
	return m
}()

func isOperator(f string) bool {
	switch f {
	case "+", "-", "*", "/", "^", "x", "×", "÷", "%":
		return true
	}
	return false
}

// isNumber reports whether f is a number as people write one ("5", "26.2", "1,000").
func isNumber(f string) bool {
	digits := 0
	for i := 0; i < len(f); i++ {
		switch {
		case f[i] >= '0' && f[i] <= '9':
			digits++
		case f[i] != '.' && f[i] != ',':
			return false
		}
	}
	return digits > 0
}

// topLevelDomains are the commonest top-level domains: a word that ends in one after a dot
// ("example.com", "docs.github.io/x") is a host name, as a URL without its scheme. Not
// ones that are file extensions too (.md, .py, .sh, .rs).
var topLevelDomains = setOf("com", "org", "net", "io", "dev", "app", "ai", "co", "edu", "gov",
	"info", "me", "xyz", "uk", "de", "fr", "nl", "jp", "us", "ca", "eu")

// isHostName reports whether f is a host name: two or more labels of letters, digits and
// hyphens, the last a common top-level domain.
func isHostName(f string) bool {
	dot := strings.LastIndexByte(f, '.')
	if dot <= 0 {
		return false
	}
	if _, ok := topLevelDomains[f[dot+1:]]; !ok {
		return false
	}
	for _, label := range strings.Split(f[:dot], ".") {
		if label == "" || strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return false
		}
	}
	return true
}

// hostWords are the words of a host name that may say something ("api github" of
// "www.api.github.com"): not "www" or its top-level domain.
func hostWords(host string) string {
	host, _, _ = strings.Cut(host, ":")
	labels := strings.Split(host, ".")
	if len(labels) > 1 {
		labels = labels[:len(labels)-1]
	}
	if len(labels) > 1 && labels[0] == "www" {
		labels = labels[1:]
	}
	return strings.Join(labels, " ")
}

// entityWords returns the words for what one query word names by example, if it does.
func entityWords(f string) (string, bool) {
	if f == "" {
		return "", false
	}
	lower := strings.ToLower(f)
	if scheme, rest, ok := strings.Cut(lower, "://"); ok && scheme != "" && rest != "" {
		host, _, _ := strings.Cut(rest, "/")
		return "url " + hostWords(host), true
	}
	if host, _, _ := strings.Cut(lower, "/"); isHostName(host) {
		return "url " + hostWords(host), true
	}
	if at := strings.IndexByte(f, '@'); at > 0 && strings.Contains(f[at:], ".") && !strings.Contains(f, ":") {
		return "email", true
	}
	if isIPLike(f) {
		return "ip address", true
	}
	if w, ok := literalWords(lower); ok {
		return w, true
	}
	if isArithmetic(f) {
		return "calculate", true
	}
	if dot := strings.LastIndexByte(f, '.'); dot >= 0 && dot < len(f)-1 {
		if kind, ok := fileExtensions[lower[dot+1:]]; ok {
			base := f[:dot]
			if sl := strings.LastIndexByte(base, '/'); sl >= 0 {
				base = base[sl+1:]
			}
			if base = strings.TrimLeft(base, "."); base == "" {
				base = lower[dot+1:] // ".csv": any CSV file
			}
			w := strings.TrimSpace(base + " file " + lower[dot+1:] + " " + kind)
			return w, true
		}
	}
	if strings.Contains(f, "=>") || strings.Contains(f, "()") || strings.Contains(f, "){") || isMethodCall(f) {
		return "code", true
	}
	if kind, name, ok := strings.Cut(lower, "/"); ok && name != "" && !strings.ContainsAny(name, "/.") {
		if _, ok := branchKinds[kind]; ok {
			return f[len(kind)+1:] + " branch", true
		}
	}
	if strings.HasPrefix(f, "~/") || strings.HasPrefix(f, "/") || strings.HasPrefix(f, "./") ||
		(strings.Count(f, "/") >= 2 && !strings.Contains(f, " ")) ||
		(len(f) > 1 && strings.HasSuffix(f, "/") && !strings.Contains(f, "//")) {
		last := strings.TrimRight(f, "/")
		if sl := strings.LastIndexByte(last, '/'); sl >= 0 {
			last = last[sl+1:]
		}
		return last + " directory path", true
	}
	return "", false
}

// isMethodCall reports whether f holds a call written as code: ".name(" ("xs.map(f").
func isMethodCall(f string) bool {
	for {
		dot := strings.IndexByte(f, '.')
		if dot < 0 {
			return false
		}
		f = f[dot+1:]
		i := 0
		for i < len(f) && (isLetter(rune(f[i])) || f[i] == '_') {
			i++
		}
		if i > 0 && i < len(f) && f[i] == '(' {
			return true
		}
	}
}

// literalWords returns the words for a number, version, date or time written as one: "0x1f4",
// "0b101", "^2.3.0", "2023-11-02", "2023-11-02t09:00", "09:00", "b2:b5".
func literalWords(f string) (string, bool) {
	switch {
	case len(f) > 2 && strings.HasPrefix(f, "0x") && strings.Trim(f[2:], "0123456789abcdef") == "":
		return "hexadecimal number", true
	case len(f) > 2 && strings.HasPrefix(f, "0b") && strings.Trim(f[2:], "01") == "":
		return "binary number", true
	case isObjectHash(f):
		return "hash", true
	}
	if isVersion(strings.TrimLeft(f, "^~v=<>")) {
		return "version", true
	}
	date, clock, hasT := strings.Cut(f, "t")
	if isDate(date) {
		if hasT && isClock(clock) {
			return "date time", true
		}
		if !hasT {
			return "date", true
		}
	}
	if isClock(f) {
		return "time", true
	}
	if a, b, ok := strings.Cut(f, ":"); ok && isCell(a) && isCell(b) {
		return "cell range", true
	}
	return "", false
}

// isObjectHash reports whether f is written as a content hash: 7 to 64 hexadecimal digits
// with both digits and letters ("a1b2c3d", a Git commit's short form, or a SHA-256), so that
// no word ("effaced") and no plain number is one.
func isObjectHash(f string) bool {
	if len(f) < 7 || len(f) > 64 || strings.Trim(f, "0123456789abcdef") != "" {
		return false
	}
	return strings.ContainsAny(f, "0123456789") && strings.ContainsAny(f, "abcdef")
}

// isVersion reports whether f is a semantic version ("2.4.1", "3.0.0-rc.1").
func isVersion(f string) bool {
	core, _, _ := strings.Cut(f, "-")
	return digitGroups(core, 3, 5)
}

// digitGroups reports whether f is n groups of 1 to maxLen digits joined by dots.
func digitGroups(f string, n, maxLen int) bool {
	p := strings.Split(f, ".")
	if len(p) != n {
		return false
	}
	for _, x := range p {
		if x == "" || len(x) > maxLen || strings.Trim(x, "0123456789") != "" {
			return false
		}
	}
	return true
}

// isDate reports whether f is an ISO date ("2023-11-02") or a day/month/year ("02/11/2023").
func isDate(f string) bool {
	for _, sep := range "-/." {
		p := strings.Split(f, string(sep))
		if len(p) != 3 {
			continue
		}
		n := 0
		for _, x := range p {
			if x == "" || len(x) > 4 || strings.Trim(x, "0123456789") != "" {
				return false
			}
			if len(x) == 4 {
				n++
			}
		}
		return n == 1 && (len(p[0]) == 4 || len(p[2]) == 4)
	}
	return false
}

// isClock reports whether f is a time of day ("9:00", "09:00:30", "14:05z").
func isClock(f string) bool {
	f = strings.TrimSuffix(f, "z")
	p := strings.Split(f, ":")
	if len(p) < 2 || len(p) > 3 || len(p[0]) == 0 || len(p[0]) > 2 {
		return false
	}
	for _, x := range p {
		if x == "" || len(x) > 2 && len(p) == 2 || strings.Trim(x, "0123456789.") != "" {
			return false
		}
	}
	return len(p[1]) == 2
}

// isCell reports whether f is a spreadsheet cell ("b2", "aa10").
func isCell(f string) bool {
	i := 0
	for i < len(f) && f[i] >= 'a' && f[i] <= 'z' {
		i++
	}
	return i >= 1 && i <= 3 && i < len(f) && len(f)-i <= 7 && strings.Trim(f[i:], "0123456789") == ""
}

// isIPLike reports whether f is an IPv4 address or network ("10.0.0.0/22").
func isIPLike(f string) bool {
	addr, _, _ := strings.Cut(f, "/")
	return digitGroups(addr, 4, 3)
}

// isArithmetic reports whether f is digits joined by arithmetic operators ("12*7", "2^10").
func isArithmetic(f string) bool {
	digits, ops := 0, 0
	for i := 0; i < len(f); i++ {
		switch c := f[i]; {
		case c >= '0' && c <= '9' || c == '.':
			digits++
		case c == '+' || c == '*' || c == '^' || c == '/' || c == '-' || c == '%' || c == '=' || c == '(' || c == ')':
			ops++
		default:
			return false
		}
	}
	return digits > 0 && ops > 0 && f != "-" && !(ops == 1 && (f[0] == '-' || f[0] == '+'))
}

// quotedToText replaces each quoted passage of a query ('handle empty cart', "ping 123") by
// "text": it is what the tool is to act on, a message, a name or a value, and its words say
// nothing about which tool is meant. A quote opens after a space or at the start and closes
// before a space, punctuation or the end, so contractions ("don't") are not quotes.
func quotedToText(q string) string {
	if !strings.ContainsAny(q, "'\"\u2018\u201c") {
		return q
	}
	var b strings.Builder
	i := 0
	for i < len(q) {
		c := q[i]
		open := (c == '\'' || c == '"') && (i == 0 || q[i-1] == ' ')
		if !open {
			b.WriteByte(c)
			i++
			continue
		}
		end := -1
		for j := i + 1; j < len(q) && j-i <= 200; j++ {
			if q[j] == c && j > i+1 && (j+1 == len(q) || strings.IndexByte(" ,.;:!?)", q[j+1]) >= 0) {
				end = j
				break
			}
		}
		if end < 0 {
			b.WriteByte(c)
			i++
			continue
		}
		b.WriteString("text")
		i = end + 1
	}
	return b.String()
}
