package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// RootField is the Field of an error about the document as a whole (not JSON, not an object),
// so that every FieldError names something.
const RootField = "$"

// Parse decodes a config file's bytes.
//
// Both forms of mcpServers are accepted: a list of entries with "name", and the Claude-Desktop
// map form {"mcpServers": {"name": {...}}}, where the key is the name and a "name" inside, if
// present, must match it. Errors use the entry's index in document order in both forms
// ("mcpServers[1].command"), so that they line up with Config.Servers and with Validate.
//
// Unlike encoding/json, field names are matched exactly (case-sensitive), every unknown field
// and every wrong type is reported with its full path ("mcpServers[1].comand: unknown field"),
// and a key given twice in one object is an error instead of silently keeping the last.
//
// Parse returns the config, not yet normalised, and all field errors found: decoding errors
// first, then Validate's (minus those about a field that already failed to decode). The
// returned Config is never nil, but when errors are returned it holds only what could be
// decoded and must not be used.
func Parse(data []byte) (*Config, []FieldError) {
	p := &parser{}
	c := p.config(data)
	failed := make(map[string]bool, len(p.errs))
	for _, e := range p.errs {
		failed[e.Field] = true
	}
	for _, e := range c.Validate() {
		if !covered(failed, e.Field) {
			p.errs = append(p.errs, e)
		}
	}
	if len(p.errs) == 0 {
		return c, nil
	}
	if len(p.errs) > MaxErrors {
		more := len(p.errs) - MaxErrors
		p.errs = append(p.errs[:MaxErrors], FieldError{Field: RootField, Message: fmt.Sprintf("%d more errors not shown", more)})
	}
	return c, p.errs
}

// MaxErrors is how many errors Parse lists before summing up the rest in one last error, so
// that a pathological document cannot produce an answer larger than itself.
const MaxErrors = 100

// utf8BOM is stripped before parsing: some Windows editors write it and JSON forbids it.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// parser collects every error instead of stopping at the first, which is what a user fixing a
// file by hand (or a UI showing errors next to fields) wants.
type parser struct {
	errs []FieldError
}

func (p *parser) fail(path, format string, args ...any) {
	if path == "" {
		path = RootField
	}
	p.errs = append(p.errs, FieldError{Field: path, Message: fmt.Sprintf(format, args...)})
}

// covered reports whether field is, or lies under, one of the fields that failed to decode.
// It looks up each prefix of field ("a", "a.b", "a.b[2]") in the set, so checking many
// errors stays linear (a document with thousands of duplicate names must not cost minutes).
func covered(failed map[string]bool, field string) bool {
	if len(failed) == 0 {
		return false
	}
	if failed[RootField] || failed[field] {
		return true
	}
	for i := 0; i < len(field); i++ {
		if (field[i] == '.' || field[i] == '[') && failed[field[:i]] {
			return true
		}
	}
	return false
}

func (p *parser) config(data []byte) *Config {
	c := &Config{}
	data = bytes.TrimPrefix(data, utf8BOM)
	if len(bytes.TrimSpace(data)) == 0 {
		p.fail("", "empty document; want a JSON object")
		return c
	}
	if !json.Valid(data) {
		p.fail("", "%s", syntaxError(data))
		return c
	}
	// null would otherwise decode as an empty config and, applied, remove every server.
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		p.fail("", "the document is null; want a JSON object")
		return c
	}
	p.fields("", data, map[string]func(string, json.RawMessage){
		"listen":              func(path string, raw json.RawMessage) { p.str(path, raw, &c.Listen) },
		"data_dir":            func(path string, raw json.RawMessage) { p.str(path, raw, &c.DataDir) },
		"api_key":             func(path string, raw json.RawMessage) { p.str(path, raw, &c.APIKey) },
		"require_mcp_auth":    func(path string, raw json.RawMessage) { p.boolPtr(path, raw, &c.RequireMCPAuth) },
		"trusted_hosts":       func(path string, raw json.RawMessage) { p.strList(path, raw, &c.TrustedHosts) },
		"tools_limit":         func(path string, raw json.RawMessage) { p.integer(path, raw, &c.ToolsLimit) },
		"mcp_mode":            func(path string, raw json.RawMessage) { p.str(path, raw, &c.MCPMode) },
		"tool_name_separator": func(path string, raw json.RawMessage) { p.str(path, raw, &c.ToolNameSeparator) },
		"call_tool_timeout":   func(path string, raw json.RawMessage) { p.duration(path, raw, &c.CallToolTimeout) },
		"restart_concurrency": func(path string, raw json.RawMessage) { p.integer(path, raw, &c.RestartConcurrency) },
		"max_message_bytes":   func(path string, raw json.RawMessage) { p.integer(path, raw, &c.MaxMessageBytes) },
		"docker_isolation": func(path string, raw json.RawMessage) {
			p.fields(path, raw, map[string]func(string, json.RawMessage){
				"enabled":       func(path string, raw json.RawMessage) { p.boolean(path, raw, &c.DockerIsolation.Enabled) },
				"default_image": func(path string, raw json.RawMessage) { p.str(path, raw, &c.DockerIsolation.DefaultImage) },
			})
		},
		"activity": func(path string, raw json.RawMessage) {
			p.fields(path, raw, map[string]func(string, json.RawMessage){
				"record_arguments": func(path string, raw json.RawMessage) { p.boolPtr(path, raw, &c.Activity.RecordArguments) },
				"max_records":      func(path string, raw json.RawMessage) { p.integer(path, raw, &c.Activity.MaxRecords) },
				"max_age":          func(path string, raw json.RawMessage) { p.duration(path, raw, &c.Activity.MaxAge) },
			})
		},
		"metrics": func(path string, raw json.RawMessage) {
			p.fields(path, raw, map[string]func(string, json.RawMessage){
				"open": func(path string, raw json.RawMessage) { p.boolean(path, raw, &c.Metrics.Open) },
			})
		},
		"mcpServers": func(path string, raw json.RawMessage) { c.Servers = p.servers(path, raw) },
	})
	return c
}

// servers decodes either form of mcpServers.
func (p *parser) servers(path string, raw json.RawMessage) []ServerConfig {
	switch kindOf(raw) {
	case "null":
		return nil
	case "array":
		items := arrayItems(raw)
		out := make([]ServerConfig, 0, len(items))
		for i, item := range items {
			s, _ := p.server(fmt.Sprintf("%s[%d]", path, i), item)
			out = append(out, s)
		}
		return out
	case "object":
		members := objectMembers(raw)
		out := make([]ServerConfig, 0, len(members))
		seen := make(map[string]bool, len(members))
		for i, m := range members {
			itemPath := fmt.Sprintf("%s[%d]", path, i)
			if seen[m.key] {
				p.fail(itemPath, "duplicate key %q", m.key)
				continue
			}
			seen[m.key] = true
			s, named := p.server(itemPath, m.value)
			if !named {
				s.Name = m.key
			} else if s.Name != m.key {
				p.fail(itemPath+".name", "%q does not match its key %q", s.Name, m.key)
			}
			out = append(out, s)
		}
		return out
	default:
		p.fail(path, "want a list of servers or an object of servers by name, got %s", kindOf(raw))
		return nil
	}
}

// server decodes one entry; named reports whether it had a "name" field.
func (p *parser) server(path string, raw json.RawMessage) (s ServerConfig, named bool) {
	if k := kindOf(raw); k != "object" {
		p.fail(path, "want an object, got %s", k)
		return s, false
	}
	p.fields(path, raw, map[string]func(string, json.RawMessage){
		"name": func(path string, raw json.RawMessage) {
			named = kindOf(raw) != "null"
			p.str(path, raw, &s.Name)
		},
		"protocol":         func(path string, raw json.RawMessage) { p.str(path, raw, &s.Protocol) },
		"command":          func(path string, raw json.RawMessage) { p.str(path, raw, &s.Command) },
		"args":             func(path string, raw json.RawMessage) { p.strList(path, raw, &s.Args) },
		"env":              func(path string, raw json.RawMessage) { p.strMap(path, raw, &s.Env) },
		"working_dir":      func(path string, raw json.RawMessage) { p.str(path, raw, &s.WorkingDir) },
		"url":              func(path string, raw json.RawMessage) { p.str(path, raw, &s.URL) },
		"headers":          func(path string, raw json.RawMessage) { p.strMap(path, raw, &s.Headers) },
		"enabled":          func(path string, raw json.RawMessage) { p.boolPtr(path, raw, &s.Enabled) },
		"quarantined":      func(path string, raw json.RawMessage) { p.boolPtr(path, raw, &s.Quarantined) },
		"disabled_tools":   func(path string, raw json.RawMessage) { p.strList(path, raw, &s.DisabledTools) },
		"protocol_version": func(path string, raw json.RawMessage) { p.str(path, raw, &s.ProtocolVersion) },
		"isolation": func(path string, raw json.RawMessage) {
			if kindOf(raw) == "null" {
				return
			}
			iso := &Isolation{}
			if p.fields(path, raw, map[string]func(string, json.RawMessage){
				"enabled": func(path string, raw json.RawMessage) { p.boolean(path, raw, &iso.Enabled) },
				"image":   func(path string, raw json.RawMessage) { p.str(path, raw, &iso.Image) },
				"network": func(path string, raw json.RawMessage) { p.str(path, raw, &iso.Network) },
			}) {
				s.Isolation = iso
			}
		},
		"oauth": func(path string, raw json.RawMessage) {
			if kindOf(raw) == "null" {
				return
			}
			o := &OAuth{}
			if p.fields(path, raw, map[string]func(string, json.RawMessage){
				"client_id":           func(path string, raw json.RawMessage) { p.str(path, raw, &o.ClientID) },
				"client_secret":       func(path string, raw json.RawMessage) { p.str(path, raw, &o.ClientSecret) },
				"scopes":              func(path string, raw json.RawMessage) { p.strList(path, raw, &o.Scopes) },
				"client_metadata_url": func(path string, raw json.RawMessage) { p.str(path, raw, &o.ClientMetadataURL) },
				"grant":               func(path string, raw json.RawMessage) { p.str(path, raw, &o.Grant) },
				"private_key":         func(path string, raw json.RawMessage) { p.str(path, raw, &o.PrivateKey) },
				"signing_alg":         func(path string, raw json.RawMessage) { p.str(path, raw, &o.SigningAlg) },
				"idp": func(path string, raw json.RawMessage) {
					if kindOf(raw) == "null" {
						return
					}
					idp := &IdP{}
					if p.fields(path, raw, map[string]func(string, json.RawMessage){
						"token_endpoint": func(path string, raw json.RawMessage) { p.str(path, raw, &idp.TokenEndpoint) },
						"issuer":         func(path string, raw json.RawMessage) { p.str(path, raw, &idp.Issuer) },
						"client_id":      func(path string, raw json.RawMessage) { p.str(path, raw, &idp.ClientID) },
						"client_secret":  func(path string, raw json.RawMessage) { p.str(path, raw, &idp.ClientSecret) },
						"id_token":       func(path string, raw json.RawMessage) { p.str(path, raw, &idp.IDToken) },
					}) {
						o.IdP = idp
					}
				},
			}) {
				s.OAuth = o
			}
		},
	})
	return s, named
}

// fields decodes a JSON object by handing each member to the handler for its key; unknown and
// repeated keys are errors. A null object is treated as absent. It reports whether raw was an
// object.
func (p *parser) fields(path string, raw json.RawMessage, handlers map[string]func(string, json.RawMessage)) bool {
	switch k := kindOf(raw); k {
	case "object":
	case "null":
		return false
	default:
		p.fail(path, "want an object, got %s", k)
		return false
	}
	seen := make(map[string]bool)
	for _, m := range objectMembers(raw) {
		fieldPath := joinPath(path, m.key)
		if seen[m.key] {
			p.fail(fieldPath, "duplicate key")
			continue
		}
		seen[m.key] = true
		h, ok := handlers[m.key]
		if !ok {
			p.fail(fieldPath, "%s", unknownField(m.key, handlers))
			continue
		}
		h(fieldPath, m.value)
	}
	return true
}

// aliases are field names other MCP clients use for what this config calls something else;
// they get a precise hint instead of a bare "unknown field".
var aliases = map[string]string{
	"type":        "protocol",
	"transport":   "protocol",
	"cwd":         "working_dir",
	"workingDir":  "working_dir",
	"disabled":    "enabled",
	"serverUrl":   "url",
	"mcp_servers": "mcpServers",
}

// unknownField words the error for an unknown key, suggesting the field probably meant.
func unknownField(key string, handlers map[string]func(string, json.RawMessage)) string {
	if alias, ok := aliases[key]; ok {
		if _, known := handlers[alias]; known {
			return fmt.Sprintf("unknown field; did you mean %q?", alias)
		}
	}
	if len(key) > 64 { // no field name is that long; and this keeps the search cheap
		return "unknown field"
	}
	best, bestDist := "", 3 // suggest only close matches: a typo, not a different word
	for name := range handlers {
		d := editDistance(strings.ToLower(key), strings.ToLower(name))
		if d < bestDist || (d == bestDist && best != "" && name < best) {
			best, bestDist = name, d
		}
	}
	if best != "" && bestDist <= max(1, len(best)/3) {
		return fmt.Sprintf("unknown field; did you mean %q?", best)
	}
	return "unknown field"
}

// editDistance is the Levenshtein distance, for "did you mean" hints only.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (p *parser) str(path string, raw json.RawMessage, dst *string) {
	switch k := kindOf(raw); k {
	case "string":
		*dst = unquote(raw)
	case "null":
	default:
		p.fail(path, "want a string, got %s", k)
	}
}

func (p *parser) boolean(path string, raw json.RawMessage, dst *bool) {
	switch k := kindOf(raw); k {
	case "boolean":
		*dst = bytes.HasPrefix(bytes.TrimSpace(raw), []byte("true"))
	case "null":
	default:
		p.fail(path, "want true or false, got %s", k)
	}
}

func (p *parser) boolPtr(path string, raw json.RawMessage, dst **bool) {
	if kindOf(raw) == "null" {
		return
	}
	var b bool
	n := len(p.errs)
	p.boolean(path, raw, &b)
	if len(p.errs) == n {
		*dst = &b
	}
}

func (p *parser) integer(path string, raw json.RawMessage, dst *int) {
	switch k := kindOf(raw); k {
	case "number":
		text := string(bytes.TrimSpace(raw))
		n, err := strconv.ParseInt(text, 10, 0)
		switch {
		case err == nil:
			*dst = int(n)
		case strings.ContainsAny(text, ".eE"):
			p.fail(path, "want a whole number, got %s", text)
		default:
			p.fail(path, "number %s is out of range", text)
		}
	case "null":
	default:
		p.fail(path, "want a number, got %s", k)
	}
}

func (p *parser) duration(path string, raw json.RawMessage, dst *Duration) {
	if err := dst.UnmarshalJSON(raw); err != nil {
		p.fail(path, "%s", err)
	}
}

func (p *parser) strList(path string, raw json.RawMessage, dst *[]string) {
	switch k := kindOf(raw); k {
	case "array":
	case "null":
		return
	default:
		p.fail(path, "want a list of strings, got %s", k)
		return
	}
	items := arrayItems(raw)
	out := make([]string, len(items))
	for i, item := range items {
		p.strictStr(fmt.Sprintf("%s[%d]", path, i), item, &out[i])
	}
	*dst = out
}

func (p *parser) strMap(path string, raw json.RawMessage, dst *map[string]string) {
	switch k := kindOf(raw); k {
	case "object":
	case "null":
		return
	default:
		p.fail(path, "want an object of strings, got %s", k)
		return
	}
	members := objectMembers(raw)
	out := make(map[string]string, len(members))
	for _, m := range members {
		itemPath := joinPath(path, m.key)
		if _, dup := out[m.key]; dup {
			p.fail(itemPath, "duplicate key")
			continue
		}
		var v string
		p.strictStr(itemPath, m.value, &v)
		out[m.key] = v
	}
	*dst = out
}

// strictStr is str for list items and map values, where null is not a way to say "unset".
func (p *parser) strictStr(path string, raw json.RawMessage, dst *string) {
	if k := kindOf(raw); k != "string" {
		p.fail(path, "want a string, got %s", k)
		return
	}
	*dst = unquote(raw)
}

// unquote decodes a valid JSON string. The common case, no escapes and valid UTF-8, is a plain
// copy; anything else goes through encoding/json (which also turns invalid UTF-8 into U+FFFD).
func unquote(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// UnmarshalJSON accepts a Go duration string ("90s", "2m"); an empty string or null means unset.
// A number is rejected rather than guessed at (seconds? nanoseconds?).
func (d *Duration) UnmarshalJSON(b []byte) error {
	switch kindOf(b) {
	case "null":
		return nil
	case "string":
	default:
		return fmt.Errorf("want a duration string like %q", "2m")
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string like %q", "2m")
	}
	if s == "" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q; want a duration string like %q", s, "2m")
	}
	*d = Duration(v)
	return nil
}

// member is one key/value pair of a JSON object, kept in document order.
type member struct {
	key   string
	value json.RawMessage
}

// objectMembers splits a JSON object into its members in document order (the map form of
// mcpServers keeps the file's order) and keeps repeated keys, so the caller can report them.
// raw must be valid JSON (Parse checks the whole document first), which is what lets this be a
// plain scanner instead of a json.Decoder, several times faster.
func objectMembers(raw json.RawMessage) []member {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil
	}
	var out []member
	for i = skipSpace(raw, i+1); i < len(raw) && raw[i] != '}'; {
		keyEnd := skipValue(raw, i)
		key := unquote(raw[i:keyEnd])
		i = skipSpace(raw, keyEnd)
		i = skipSpace(raw, i+1) // ':'
		valEnd := skipValue(raw, i)
		out = append(out, member{key: key, value: raw[i:valEnd]})
		i = skipSpace(raw, valEnd)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	return out
}

// arrayItems splits a valid JSON array into its items.
func arrayItems(raw json.RawMessage) []json.RawMessage {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return nil
	}
	var out []json.RawMessage
	for i = skipSpace(raw, i+1); i < len(raw) && raw[i] != ']'; {
		end := skipValue(raw, i)
		out = append(out, raw[i:end])
		i = skipSpace(raw, end)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	return out
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the valid JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		for i++; i < len(b); i++ {
			switch b[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return i
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			case '"':
				i = skipValue(b, i) - 1
			}
		}
		return i
	default:
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
		}
		return i
	}
}

// kindOf names the JSON type of a valid JSON value, in the words error messages use.
func kindOf(raw []byte) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// joinPath appends an object key to a field path. Keys that are not plain words are quoted so
// the path stays unambiguous ("env.API_KEY", but `headers["X.Y"]`).
func joinPath(path, key string) string {
	if !plainKey(key) {
		key = strconv.Quote(key)
		if path == "" {
			return "[" + key + "]"
		}
		return path + "[" + key + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func plainKey(key string) bool {
	if key == "" {
		return false
	}
	return !slices.ContainsFunc([]rune(key), func(r rune) bool {
		return !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
}

// syntaxError describes why data is not JSON, with a line and column a person can find.
func syntaxError(data []byte) string {
	var v any
	err := json.Unmarshal(data, &v)
	var se *json.SyntaxError
	if err == nil {
		return "invalid JSON"
	}
	if !errors.As(err, &se) {
		return "invalid JSON: " + err.Error()
	}
	// Offset counts the bytes read up to and including the offending one.
	off := int(se.Offset) - 1
	off = max(0, min(off, len(data)))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(data[:off], '\n')
	return fmt.Sprintf("invalid JSON at line %d, column %d: %s", line, col, se.Error())
}
