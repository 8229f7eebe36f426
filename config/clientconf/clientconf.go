// Package clientconf reads and writes the MCP configs of other clients: Claude Desktop's
// claude_desktop_config.json, Cursor's mcp.json, VS Code's mcp.json and Codex's
// config.toml. Import turns their server entries into mcpproxy entries (mcpproxy servers
// import, POST /api/v1/servers/import); Connect writes the proxy's own /mcp entry into
// them (mcpproxy connect).
//
// The formats, as those clients document them:
//
//   - claude-desktop and cursor: a JSON object with "mcpServers", a map of name to
//     {"command", "args", "env"} (stdio) or, in Cursor, {"url", "headers"} (remote);
//   - vscode: a JSON object (with comments and trailing commas allowed, as VS Code allows
//     them) with "servers", a map of name to {"type": "stdio"|"http"|"sse", "command",
//     "args", "env", "url", "headers"}, and "inputs", the prompts that ${input:ID} in a
//     value refers to. The proxy has no one to prompt, so such a value is an error to fix
//     (put the value in a secret and write ${secret:NAME}); ${env:NAME} means the same in
//     both;
//   - codex: TOML with a [mcp_servers.NAME] table per server: command, args, env, cwd, or
//     url with http_headers and bearer_token_env_var (sent as "Authorization: Bearer
//     ${env:VAR}"); enabled = false imports the server disabled. Codex's timeouts have no
//     counterpart per server and are left out.
//
// TOML is read with github.com/pelletier/go-toml/v2, already in the module graph (gin
// needs it), so no new module comes in for it.
package clientconf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/mcpproxy/mcpproxy/config"
)

// Formats (client names as the CLI takes them).
const (
	ClaudeDesktop = "claude-desktop"
	Cursor        = "cursor"
	VSCode        = "vscode"
	Codex         = "codex"
)

// Formats lists every known client.
var Formats = []string{ClaudeDesktop, Cursor, VSCode, Codex}

// Known reports whether format names a client.
func Known(format string) bool { return slices.Contains(Formats, format) }

// DefaultPath is where the client keeps its user-level config on this OS (home is the
// user's home directory). VS Code's is the user profile's mcp.json; a workspace's
// .vscode/mcp.json can be named with a path instead.
func DefaultPath(format, home string) string {
	appData := os.Getenv("APPDATA")
	switch format {
	case ClaudeDesktop:
		switch runtime.GOOS {
		case "darwin":
			return filepath.Join(home, "Library", "Application Support", "Claude", "claude_desktop_config.json")
		case "windows":
			return filepath.Join(appData, "Claude", "claude_desktop_config.json")
		}
		return filepath.Join(home, ".config", "Claude", "claude_desktop_config.json")
	case Cursor:
		return filepath.Join(home, ".cursor", "mcp.json")
	case VSCode:
		switch runtime.GOOS {
		case "darwin":
			return filepath.Join(home, "Library", "Application Support", "Code", "User", "mcp.json")
		case "windows":
			return filepath.Join(appData, "Code", "User", "mcp.json")
		}
		return filepath.Join(home, ".config", "Code", "User", "mcp.json")
	case Codex:
		if h := os.Getenv("CODEX_HOME"); h != "" {
			return filepath.Join(h, "config.toml")
		}
		return filepath.Join(home, ".codex", "config.toml")
	}
	return ""
}

// Problem is an entry that could not be imported, or a field of it to fix.
type Problem struct {
	Server  string `json:"server"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Parsed is what a client's file holds: the entries that read as valid mcpproxy entries
// (in the file's order, every one quarantined) and the problems of the others.
type Parsed struct {
	Servers  []config.ServerConfig
	Problems []Problem
}

// Detect guesses the format of a file's content: TOML for Codex, a "servers" map for VS
// Code, else the "mcpServers" map shared by Claude Desktop and Cursor (read the same).
func Detect(data []byte) string {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(stripJSONC(data), &probe); err != nil {
		var t map[string]any
		if toml.Unmarshal(data, &t) == nil {
			return Codex
		}
		return Cursor
	}
	if _, ok := probe["servers"]; ok {
		if _, both := probe["mcpServers"]; !both {
			return VSCode
		}
	}
	return Cursor
}

// Parse reads a client's config file content in format ("" detects it). A file that
// cannot be read at all is an error; entries that cannot be imported are Problems.
func Parse(format string, data []byte) (Parsed, error) {
	if format == "" {
		format = Detect(data)
	}
	switch format {
	case ClaudeDesktop, Cursor:
		return parseJSON(data, "mcpServers", false)
	case VSCode:
		return parseJSON(data, "servers", true)
	case Codex:
		return parseCodex(data)
	}
	return Parsed{}, fmt.Errorf("unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

// jsonEntry is a server entry of the JSON formats; fields the proxy has no use for are
// ignored (Claude Desktop and Cursor have few; VS Code's envFile and dev are reported).
type jsonEntry struct {
	Type    string            `json:"type"`
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env"`
	Cwd     string            `json:"cwd"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	EnvFile string            `json:"envFile"`
	// Disabled is Cursor's and Claude's way to keep an entry switched off.
	Disabled bool `json:"disabled"`
}

func parseJSON(data []byte, key string, vscode bool) (Parsed, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(stripJSONC(data), &doc); err != nil {
		return Parsed{}, fmt.Errorf("not a JSON object: %v", err)
	}
	raw, ok := doc[key]
	if !ok {
		return Parsed{}, fmt.Errorf("no %q in the file", key)
	}
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return Parsed{}, fmt.Errorf("%q is not an object of servers by name: %v", key, err)
	}
	var out Parsed
	for _, name := range orderedKeys(raw, entries) {
		var e jsonEntry
		if err := json.Unmarshal(entries[name], &e); err != nil {
			out.Problems = append(out.Problems, Problem{Server: name, Message: "cannot read the entry: " + err.Error()})
			continue
		}
		sc := config.ServerConfig{Name: name, Command: e.Command, Args: e.Args, Env: e.Env, WorkingDir: e.Cwd, URL: e.URL, Headers: e.Headers}
		switch e.Type {
		case "", "stdio":
		case "http", "streamable-http", "streamableHttp":
			sc.Protocol = config.ProtocolHTTP
		case "sse":
			sc.Protocol = config.ProtocolSSE
		default:
			out.Problems = append(out.Problems, Problem{Server: name, Field: "type", Message: fmt.Sprintf("unknown type %q", e.Type)})
			continue
		}
		if e.Disabled {
			sc.Enabled = new(bool)
		}
		var probs []Problem
		if vscode {
			probs = vscodeVariables(sc)
			if e.EnvFile != "" {
				probs = append(probs, Problem{Server: name, Field: "envFile", Message: "env files are not read; put the variables in env"})
			}
		}
		out.add(sc, probs)
	}
	return out, nil
}

// add keeps sc if it has no problems and validates as an mcpproxy entry.
func (p *Parsed) add(sc config.ServerConfig, probs []Problem) {
	for _, fe := range config.ServerErrors(sc) {
		probs = append(probs, Problem{Server: sc.Name, Field: fe.Field, Message: fe.Message})
	}
	if len(probs) > 0 {
		p.Problems = append(p.Problems, probs...)
		return
	}
	sc.Quarantined = new(bool)
	*sc.Quarantined = true
	p.Servers = append(p.Servers, sc)
}

// vscodeVariables reports the VS Code variables in an entry's values other than ${env:}:
// ${input:ID} prompts the user, ${workspaceFolder} and the like depend on the editor's
// window; the proxy has neither.
func vscodeVariables(sc config.ServerConfig) []Problem {
	var out []Problem
	check := func(field, v string) {
		for rest := v; ; {
			i := strings.Index(rest, "${")
			if i < 0 {
				return
			}
			rest = rest[i+2:]
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return
			}
			name := rest[:end]
			switch {
			case strings.HasPrefix(name, "env:"), strings.HasPrefix(name, "secret:"):
			case strings.HasPrefix(name, "input:"):
				out = append(out, Problem{Server: sc.Name, Field: field, Message: fmt.Sprintf(
					"${%s} is a VS Code prompt; store the value with `mcpproxy secrets set NAME` and write ${secret:NAME}", name)})
			default:
				out = append(out, Problem{Server: sc.Name, Field: field, Message: fmt.Sprintf("${%s} is a VS Code variable the proxy cannot fill in; write the value", name)})
			}
		}
	}
	check("command", sc.Command)
	check("url", sc.URL)
	for i, a := range sc.Args {
		check(fmt.Sprintf("args[%d]", i), a)
	}
	for _, k := range slices.Sorted(maps.Keys(sc.Env)) {
		check("env."+k, sc.Env[k])
	}
	for _, k := range slices.Sorted(maps.Keys(sc.Headers)) {
		check("headers."+k, sc.Headers[k])
	}
	return out
}

// codexEntry is a [mcp_servers.NAME] table of Codex's config.toml.
type codexEntry struct {
	Command           string            `toml:"command"`
	Args              []string          `toml:"args"`
	Env               map[string]string `toml:"env"`
	Cwd               string            `toml:"cwd"`
	URL               string            `toml:"url"`
	HTTPHeaders       map[string]string `toml:"http_headers"`
	BearerTokenEnvVar string            `toml:"bearer_token_env_var"`
	Enabled           *bool             `toml:"enabled"`
}

func parseCodex(data []byte) (Parsed, error) {
	var doc struct {
		Raw map[string]any `toml:"mcp_servers"`
	}
	if err := toml.Unmarshal(data, &doc); err != nil {
		return Parsed{}, fmt.Errorf("not TOML: %v", err)
	}
	if doc.Raw == nil {
		return Parsed{}, fmt.Errorf("no [mcp_servers.NAME] table in the file")
	}
	var out Parsed
	for _, name := range tomlTableOrder(data, slices.Sorted(maps.Keys(doc.Raw))) {
		// Each table is decoded on its own, so that one with a wrong type is a problem of
		// its own and the others still import.
		one, err := toml.Marshal(doc.Raw[name])
		var e codexEntry
		if err == nil {
			err = toml.Unmarshal(one, &e)
		}
		if err != nil {
			out.Problems = append(out.Problems, Problem{Server: name, Message: "cannot read the table: " + err.Error()})
			continue
		}
		sc := config.ServerConfig{Name: name, Command: e.Command, Args: e.Args, Env: e.Env, WorkingDir: e.Cwd, URL: e.URL, Headers: e.HTTPHeaders}
		if e.URL != "" {
			sc.Protocol = config.ProtocolHTTP
		}
		if e.BearerTokenEnvVar != "" {
			if sc.Headers == nil {
				sc.Headers = map[string]string{}
			}
			sc.Headers["Authorization"] = "Bearer ${env:" + e.BearerTokenEnvVar + "}"
		}
		if e.Enabled != nil && !*e.Enabled {
			sc.Enabled = new(bool)
		}
		out.add(sc, nil)
	}
	return out, nil
}

// tomlTableOrder orders names as their [mcp_servers.NAME] headers appear in the file, so
// that an import keeps the file's order; names not found keep their sorted place at the end.
func tomlTableOrder(data []byte, names []string) []string {
	at := map[string]int{}
	for _, n := range names {
		for _, h := range []string{"[mcp_servers." + n + "]", `[mcp_servers."` + n + `"]`} {
			if i := bytes.Index(data, []byte(h)); i >= 0 {
				at[n] = i
				break
			}
		}
		if _, ok := at[n]; !ok {
			at[n] = len(data)
		}
	}
	slices.SortStableFunc(names, func(a, b string) int { return at[a] - at[b] })
	return names
}

// orderedKeys lists an object's keys in document order (encoding/json's map has none).
func orderedKeys(raw json.RawMessage, m map[string]json.RawMessage) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var keys []string
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return slices.Sorted(maps.Keys(m))
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			break
		}
		k, _ := t.(string)
		keys = append(keys, k)
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			break
		}
	}
	if len(keys) != len(m) {
		return slices.Sorted(maps.Keys(m))
	}
	return keys
}

// stripJSONC turns JSON with comments and trailing commas (VS Code's JSONC) into JSON.
// Strings are copied as they are.
func stripJSONC(data []byte) []byte {
	data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
	out := make([]byte, 0, len(data))
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(data) && data[j] != '"' {
				if data[j] == '\\' {
					j++
				}
				j++
			}
			end := min(j+1, len(data))
			out = append(out, data[i:end]...)
			i = end - 1
		case c == '/' && i+1 < len(data) && data[i+1] == '/':
			for i < len(data) && data[i] != '\n' {
				i++
			}
			if i < len(data) {
				out = append(out, '\n')
			}
		case c == '/' && i+1 < len(data) && data[i+1] == '*':
			end := bytes.Index(data[i+2:], []byte("*/"))
			if end < 0 {
				i = len(data)
			} else {
				i += end + 3
			}
			out = append(out, ' ')
		case c == ',':
			j := i + 1
			for j < len(data) && strings.IndexByte(" \t\r\n", data[j]) >= 0 {
				j++
			}
			if j < len(data) && (data[j] == '}' || data[j] == ']') {
				continue // a trailing comma
			}
			out = append(out, c)
		default:
			out = append(out, c)
		}
	}
	return out
}
