package clientconf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/mcpproxy/mcpproxy/config"
)

// Proxy is the entry Connect writes: the daemon's /mcp URL and its API key, under Name.
type Proxy struct {
	Name string // the entry's name in the client's config ("mcpproxy")
	URL  string // http://127.0.0.1:8080/mcp
	Key  string // the API key, sent as X-API-Key; empty when /mcp needs none
}

// Snippet is the entry as the client's format writes it (what --print shows).
func Snippet(format string, p Proxy) (string, error) {
	switch format {
	case Codex:
		return codexTable(p), nil
	case ClaudeDesktop, Cursor, VSCode:
		key := "mcpServers"
		if format == VSCode {
			key = "servers"
		}
		data, err := json.MarshalIndent(map[string]any{key: map[string]any{p.Name: jsonProxyEntry(format, p)}}, "", "  ")
		return string(data) + "\n", err
	}
	return "", fmt.Errorf("unknown client %q (want one of %s)", format, strings.Join(Formats, ", "))
}

// jsonProxyEntry is the entry for the JSON formats. Claude Desktop's config starts only
// stdio servers, so it gets the usual bridge, mcp-remote (run by npx), with the key in its
// environment rather than on the command line (mcp-remote expands ${VAR} in its
// arguments).
func jsonProxyEntry(format string, p Proxy) map[string]any {
	switch format {
	case ClaudeDesktop:
		args := []string{"-y", "mcp-remote", p.URL}
		e := map[string]any{"command": "npx"}
		if p.Key != "" {
			args = append(args, "--header", "X-API-Key:${MCPPROXY_API_KEY}")
			e["env"] = map[string]string{"MCPPROXY_API_KEY": p.Key}
		}
		e["args"] = args
		return e
	case VSCode:
		e := map[string]any{"type": "http", "url": p.URL}
		if p.Key != "" {
			e["headers"] = map[string]string{"X-API-Key": p.Key}
		}
		return e
	default:
		e := map[string]any{"url": p.URL}
		if p.Key != "" {
			e["headers"] = map[string]string{"X-API-Key": p.Key}
		}
		return e
	}
}

func codexTable(p Proxy) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[mcp_servers.%s]\nurl = %s\n", p.Name, tomlString(p.URL))
	if p.Key != "" {
		fmt.Fprintf(&b, "http_headers = { \"X-API-Key\" = %s }\n", tomlString(p.Key))
	}
	return b.String()
}

func tomlString(s string) string {
	data, _ := json.Marshal(s) // a JSON string is a valid TOML basic string
	return string(data)
}

// Connect writes the proxy's entry into the client's config file at path, keeping every
// other entry and setting in it, and returns the path of the backup it made of the file
// first ("" when there was no file). A file that is there but cannot be read in its format
// is left alone (an error): writing over it would lose what the user has in it.
//
// JSON files are rewritten whole (indented; VS Code's comments do not survive, which is
// what the backup is for); Codex's TOML is edited as text, replacing only the proxy's own
// table, so its comments and layout stay. The result is read back before it is written
// (atomically: a temporary file renamed over the old one).
func Connect(format, path string, p Proxy) (backup string, err error) {
	if !Known(format) {
		return "", fmt.Errorf("unknown client %q (want one of %s)", format, strings.Join(Formats, ", "))
	}
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		old = nil
	case err != nil:
		return "", err
	}
	var out []byte
	if format == Codex {
		out, err = connectCodex(old, p)
	} else {
		out, err = connectJSON(format, old, p)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if old != nil {
		backup = fmt.Sprintf("%s.bak-%s", path, time.Now().UTC().Format("20060102T150405Z"))
		if err := os.WriteFile(backup, old, 0o600); err != nil {
			return "", fmt.Errorf("back up %s: %w", path, err)
		}
	}
	return backup, config.WriteFileAtomic(path, out)
}

func connectJSON(format string, old []byte, p Proxy) ([]byte, error) {
	doc := map[string]any{}
	if len(bytes.TrimSpace(old)) > 0 {
		if err := json.Unmarshal(stripJSONC(old), &doc); err != nil {
			return nil, fmt.Errorf("not a JSON object (left as it is): %v", err)
		}
	}
	key := "mcpServers"
	if format == VSCode {
		key = "servers"
	}
	servers, ok := doc[key].(map[string]any)
	if !ok {
		if doc[key] != nil {
			return nil, fmt.Errorf("%q is not an object (left as it is)", key)
		}
		servers = map[string]any{}
	}
	servers[p.Name] = jsonProxyEntry(format, p)
	doc[key] = servers
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func connectCodex(old []byte, p Proxy) ([]byte, error) {
	var probe map[string]any
	if err := toml.Unmarshal(old, &probe); err != nil {
		return nil, fmt.Errorf("not TOML (left as it is): %v", err)
	}
	text := removeTOMLTable(string(old), "mcp_servers."+p.Name)
	if strings.TrimSpace(text) == "" {
		text = ""
	} else {
		text += "\n"
	}
	text += codexTable(p)
	if err := toml.Unmarshal([]byte(text), &probe); err != nil {
		return nil, fmt.Errorf("the edited file would not be valid TOML (%v); add the entry by hand: mcpproxy connect codex --print", err)
	}
	return []byte(text), nil
}

var tableHeader = regexp.MustCompile(`^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$`)

// removeTOMLTable drops the table named name ([name] and its sub-tables [name.x]), from its
// header to the next header of another table.
func removeTOMLTable(text, name string) string {
	lines := strings.SplitAfter(text, "\n")
	var out []string
	skipping := false
	for _, l := range lines {
		if m := tableHeader.FindStringSubmatch(strings.TrimRight(l, "\r\n")); m != nil {
			h := strings.ReplaceAll(m[1], `"`, "")
			skipping = h == name || strings.HasPrefix(h, name+".")
		}
		if !skipping {
			out = append(out, l)
		}
	}
	return strings.TrimRight(strings.Join(out, ""), "\n") + "\n"
}
