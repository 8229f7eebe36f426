package clientconf

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/mcpproxy/mcpproxy/config"
)

func sample(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "test", "testdata", "import", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func names(p Parsed) []string {
	var out []string
	for _, s := range p.Servers {
		out = append(out, s.Name)
	}
	return out
}

func problem(p Parsed, server, field string) *Problem {
	for i, pr := range p.Problems {
		if pr.Server == server && pr.Field == field {
			return &p.Problems[i]
		}
	}
	return nil
}

// TestParseSamples reads one sample file of each client: the servers that can run come out
// as valid, quarantined entries in the file's order, the others as problems naming the field.
func TestParseSamples(t *testing.T) {
	cases := []struct {
		file, format string
		want         []string
		problems     [][2]string // server, field
		check        func(t *testing.T, p Parsed)
	}{
		{"claude_desktop_config.json", ClaudeDesktop, []string{"filesystem", "github", "keep"}, [][2]string{{"broken", "command"}},
			func(t *testing.T, p Parsed) {
				if p.Servers[1].Env["GITHUB_PERSONAL_ACCESS_TOKEN"] != "ghp_example" {
					t.Errorf("github env %v", p.Servers[1].Env)
				}
			}},
		{"cursor_mcp.json", Cursor, []string{"linear", "context7", "puppeteer"}, nil,
			func(t *testing.T, p Parsed) {
				if p.Servers[1].URL != "https://mcp.context7.com/mcp" || p.Servers[1].Headers["CONTEXT7_API_KEY"] != "ctx7-example" {
					t.Errorf("context7 = %+v", p.Servers[1])
				}
				if p.Servers[2].IsEnabled() {
					t.Errorf("puppeteer (disabled: true) imported enabled")
				}
			}},
		{"vscode_mcp.json", VSCode, []string{"fetch", "github"}, [][2]string{{"perplexity", "env.PERPLEXITY_API_KEY"}},
			func(t *testing.T, p Parsed) {
				if pr := problem(p, "perplexity", "env.PERPLEXITY_API_KEY"); !strings.Contains(pr.Message, "${input:perplexity-key}") || !strings.Contains(pr.Message, "${secret:") {
					t.Errorf("perplexity problem %q", pr.Message)
				}
				if p.Servers[1].Protocol != config.ProtocolHTTP || p.Servers[1].Headers["Authorization"] != "Bearer ${env:GITHUB_TOKEN}" {
					t.Errorf("github = %+v", p.Servers[1])
				}
			}},
		{"codex_config.toml", Codex, []string{"docs", "figma", "paused"}, [][2]string{{"bad", ""}},
			func(t *testing.T, p Parsed) {
				if p.Servers[0].Env["DOCS_ROOT"] != "/srv/docs" || !slices.Equal(p.Servers[0].Args, []string{"-y", "mcp-server-docs"}) {
					t.Errorf("docs = %+v", p.Servers[0])
				}
				if p.Servers[1].Headers["Authorization"] != "Bearer ${env:FIGMA_OAUTH_TOKEN}" || p.Servers[1].Protocol != config.ProtocolHTTP {
					t.Errorf("figma = %+v", p.Servers[1])
				}
				if p.Servers[2].IsEnabled() {
					t.Errorf("paused (enabled = false) imported enabled")
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.format, func(t *testing.T) {
			data := sample(t, c.file)
			if got := Detect(data); got != c.format && !(c.format == ClaudeDesktop && got == Cursor) {
				t.Errorf("Detect = %q, want %q", got, c.format)
			}
			p, err := Parse(c.format, data)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names(p), c.want) {
				t.Errorf("servers %v, want %v (problems %+v)", names(p), c.want, p.Problems)
			}
			for _, s := range p.Servers {
				if !s.IsQuarantined() {
					t.Errorf("%s imported unquarantined", s.Name)
				}
				if errs := config.ServerErrors(s); len(errs) > 0 {
					t.Errorf("%s does not validate: %v", s.Name, errs)
				}
			}
			if len(p.Problems) != len(c.problems) {
				t.Errorf("problems %+v, want %v", p.Problems, c.problems)
			}
			for _, want := range c.problems {
				if problem(p, want[0], want[1]) == nil {
					t.Errorf("no problem for %s %q in %+v", want[0], want[1], p.Problems)
				}
			}
			if len(p.Servers) == len(c.want) {
				c.check(t, p)
			}
		})
	}
	if _, err := Parse(Cursor, []byte(`{"other": 1}`)); err == nil {
		t.Error("a file without mcpServers parsed")
	}
	if _, err := Parse(Codex, []byte(`not = toml = [`)); err == nil {
		t.Error("bad TOML parsed")
	}
}

// TestConnectKeepsOtherEntries writes the proxy entry into a copy of each sample: every
// other entry and setting is still there, the file reads back in its format with the entry,
// and the old file is in the backup.
func TestConnectKeepsOtherEntries(t *testing.T) {
	proxy := Proxy{Name: "mcpproxy", URL: "http://127.0.0.1:8080/mcp", Key: "k-123"}
	for _, c := range []struct{ file, format string }{
		{"claude_desktop_config.json", ClaudeDesktop}, {"cursor_mcp.json", Cursor},
		{"vscode_mcp.json", VSCode}, {"codex_config.toml", Codex},
	} {
		t.Run(c.format, func(t *testing.T) {
			old := sample(t, c.file)
			path := filepath.Join(t.TempDir(), "sub", c.file)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, old, 0o644); err != nil {
				t.Fatal(err)
			}
			before, _ := Parse(c.format, old)
			backup, err := Connect(c.format, path, proxy)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(backup); string(got) != string(old) {
				t.Errorf("backup %s does not hold the old file", backup)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			after, err := Parse(c.format, data)
			if err != nil {
				t.Fatalf("written file does not read back: %v\n%s", err, data)
			}
			for _, n := range names(before) {
				if !slices.Contains(names(after), n) {
					t.Errorf("entry %s lost:\n%s", n, data)
				}
			}
			if len(after.Problems) != len(before.Problems) {
				t.Errorf("problems changed: %+v -> %+v", before.Problems, after.Problems)
			}
			i := slices.Index(names(after), "mcpproxy")
			if i < 0 {
				t.Fatalf("no mcpproxy entry:\n%s", data)
			}
			e := after.Servers[i]
			switch c.format {
			case ClaudeDesktop:
				if e.Command != "npx" || !slices.Contains(e.Args, proxy.URL) || e.Env["MCPPROXY_API_KEY"] != "k-123" {
					t.Errorf("entry %+v", e)
				}
			default:
				if e.URL != proxy.URL || e.Headers["X-API-Key"] != "k-123" {
					t.Errorf("entry %+v", e)
				}
			}
			switch c.format {
			case Codex:
				var doc map[string]any
				if err := toml.Unmarshal(data, &doc); err != nil {
					t.Fatal(err)
				}
				if doc["model"] != "o4-mini" || doc["profiles"] == nil {
					t.Errorf("other settings lost:\n%s", data)
				}
				if !strings.HasPrefix(string(data), "# Codex CLI config\n") {
					t.Errorf("comments not kept:\n%s", data)
				}
			case ClaudeDesktop:
				var doc map[string]any
				if err := json.Unmarshal(data, &doc); err != nil {
					t.Fatal(err)
				}
				if doc["globalShortcut"] != "Ctrl+Space" {
					t.Errorf("other settings lost:\n%s", data)
				}
			case VSCode:
				var doc map[string]any
				if err := json.Unmarshal(data, &doc); err != nil {
					t.Fatal(err)
				}
				if doc["inputs"] == nil {
					t.Errorf("inputs lost:\n%s", data)
				}
			}
			// Connecting again replaces the entry instead of adding a second one.
			proxy2 := proxy
			proxy2.URL = "http://127.0.0.1:9090/mcp"
			if _, err := Connect(c.format, path, proxy2); err != nil {
				t.Fatal(err)
			}
			data, _ = os.ReadFile(path)
			again, err := Parse(c.format, data)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(strings.Join(names(again), ","), "mcpproxy"); n != 1 || strings.Contains(string(data), ":8080/mcp") {
				t.Errorf("second connect: %d entries, file:\n%s", n, data)
			}
		})
	}

	// A new file is created; a file that does not read is left alone.
	dir := t.TempDir()
	fresh := filepath.Join(dir, "new", "mcp.json")
	if backup, err := Connect(Cursor, fresh, proxy); err != nil || backup != "" {
		t.Fatalf("new file: %q %v", backup, err)
	}
	if p, err := Parse(Cursor, mustRead(t, fresh)); err != nil || !slices.Equal(names(p), []string{"mcpproxy"}) {
		t.Errorf("new file: %v %v", names(p), err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Connect(Cursor, bad, proxy); err == nil {
		t.Error("connect over an unreadable file succeeded")
	}
	if string(mustRead(t, bad)) != "{not json" {
		t.Error("unreadable file was changed")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestSnippet(t *testing.T) {
	p := Proxy{Name: "mcpproxy", URL: "http://127.0.0.1:8080/mcp", Key: "k"}
	for _, f := range Formats {
		s, err := Snippet(f, p)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := Parse(f, []byte(s))
		if err != nil || len(parsed.Servers) != 1 {
			t.Errorf("%s snippet does not read back: %v %+v\n%s", f, err, parsed, s)
		}
	}
}
