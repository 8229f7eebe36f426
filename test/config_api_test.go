package test

// End-to-end tests of the configuration API and hot reload (GET /api/v1/config, POST
// /api/v1/config/validate and /apply, the file watcher). Parsing and validation are also
// fuzzed: FuzzParse in config/ (go test -fuzz=FuzzParse ./config/, its seed corpus runs in
// every plain go test).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/config"
)

// applyResponse is POST /api/v1/config/apply's answer, success or error.
type applyResponse struct {
	actors.ApplyResult
	Error  string              `json:"error"`
	Code   string              `json:"code"`
	Errors []config.FieldError `json:"errors"`
}

// getConfig fetches GET /api/v1/config; the config comes back as a map so it can be edited
// and sent back as it is.
func (p *proxy) getConfig() (map[string]any, string, []byte) {
	p.t.Helper()
	var out struct {
		Config map[string]any `json:"config"`
		Path   string         `json:"path"`
	}
	code, body := p.do("GET", "/api/v1/config", nil, &out)
	if code != 200 || out.Config == nil {
		p.t.Fatalf("GET /api/v1/config: %d %s", code, body)
	}
	return out.Config, out.Path, body
}

// apply posts a config to /api/v1/config/apply.
func (p *proxy) apply(cfg any) (int, applyResponse, []byte) {
	p.t.Helper()
	var res applyResponse
	code, body := p.do("POST", "/api/v1/config/apply", cfg, &res)
	return code, res, body
}

// fixturePID asks a fixture upstream for its process id through the proxy.
func (p *proxy) fixturePID(server string) int {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := p.D.Client.CallTool(ctx, server+":pid", map[string]any{}, nil, 0, nil)
	if err != nil {
		p.t.Fatalf("%s:pid: %v", server, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(resultText(res)))
	if err != nil {
		p.t.Fatalf("%s:pid answered %q", server, resultText(res))
	}
	return pid
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := mcp.AsTextContent(c); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func (p *proxy) configPath() string { return filepath.Join(p.DataDir, config.FileName) }

func (p *proxy) readConfigFile() []byte {
	p.t.Helper()
	data, err := os.ReadFile(p.configPath())
	if err != nil {
		p.t.Fatal(err)
	}
	return data
}

// serverList returns the config's mcpServers entries (list form).
func serverList(t testing.TB, cfg map[string]any) []map[string]any {
	t.Helper()
	list, ok := cfg["mcpServers"].([]any)
	if !ok {
		t.Fatalf("mcpServers is %T", cfg["mcpServers"])
	}
	out := make([]map[string]any, len(list))
	for i, e := range list {
		out[i] = e.(map[string]any)
	}
	return out
}

func withServers(cfg map[string]any, entries ...map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range cfg {
		out[k] = v
	}
	list := make([]any, len(entries))
	for i, e := range entries {
		list[i] = e
	}
	out["mcpServers"] = list
	return out
}

// namesOnDisk parses the config file and returns its server names in order.
func (p *proxy) namesOnDisk() []string {
	p.t.Helper()
	cfg, errs := config.Parse(p.readConfigFile())
	if len(errs) > 0 {
		p.t.Fatalf("config file does not parse: %v", errs)
	}
	var names []string
	for _, s := range cfg.Servers {
		names = append(names, s.Name)
	}
	return names
}

// reloaded is config.reloaded's payload.
type reloaded struct {
	Source  string   `json:"source"`
	Path    string   `json:"path"`
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
	Changed []string `json:"changed"`
}

func reloads(t testing.TB, evs []sseEvent, source string) []reloaded {
	t.Helper()
	var out []reloaded
	for _, e := range evs {
		if e.Name != "config.reloaded" {
			continue
		}
		var r reloaded
		if err := json.Unmarshal([]byte(e.Data), &r); err != nil {
			t.Fatalf("config.reloaded data %q: %v", e.Data, err)
		}
		if source == "" || r.Source == source {
			out = append(out, r)
		}
	}
	return out
}

// TestConfigApplyDiff adds, removes and changes servers through the API: the unchanged one
// keeps its process, the changed one restarts, the removed one's process dies, and the file
// and config.reloaded say what was applied.
func TestConfigApplyDiff(t *testing.T) {
	mk := marker(t)
	p := startProxy(t, servers(
		stdioFixture(t, "keep", "--name", "keep-"+mk),
		stdioFixture(t, "change", "--name", "change-"+mk),
		stdioFixture(t, "drop", "--name", "drop-"+mk),
	))
	for _, n := range []string{"keep", "change", "drop"} {
		p.waitState(n, 20*time.Second, actors.StateReady)
	}
	keepPID, changePID := p.fixturePID("keep"), p.fixturePID("change")
	if got := processesWithArg("drop-" + mk); len(got) != 1 {
		t.Fatalf("drop processes %v", got)
	}
	s := openSSE(t, p, "/events", keyHeader(p))

	cur, path, _ := p.getConfig()
	if path != p.configPath() {
		t.Errorf("path %q, want %q", path, p.configPath())
	}
	var keep, change map[string]any
	for _, e := range serverList(t, cur) {
		switch e["name"] {
		case "keep":
			keep = e
		case "change":
			change = e
		}
	}
	change["env"] = map[string]any{"CHANGED": "yes"}
	next := withServers(cur, keep, change, stdioFixture(t, "add", "--name", "add-"+mk))
	code, res, body := p.apply(next)
	if code != 200 || !res.Applied {
		t.Fatalf("apply: %d %s", code, body)
	}
	for _, c := range []struct {
		field     string
		got, want []string
	}{
		{"added", res.Added, []string{"add"}}, {"removed", res.Removed, []string{"drop"}},
		{"changed", res.Changed, []string{"change"}}, {"unchanged", res.Unchanged, []string{"keep"}},
		{"restart_required", res.RestartRequired, []string{}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s = %v, want %v (%s)", c.field, c.got, c.want, body)
		}
	}

	waitFor(t, 10*time.Second, "drop's process to be killed", func() bool { return len(processesWithArg("drop-"+mk)) == 0 })
	p.waitState("change", 20*time.Second, actors.StateReady)
	p.waitState("add", 20*time.Second, actors.StateReady)
	if got := p.fixturePID("keep"); got != keepPID {
		t.Errorf("unchanged server's process changed: %d -> %d", keepPID, got)
	}
	if got := p.fixturePID("change"); got == changePID {
		t.Errorf("changed server kept its process %d", got)
	}
	waitFor(t, 10*time.Second, "drop to leave the server list", func() bool {
		code, _ := p.do("GET", "/api/v1/servers/drop", nil, nil)
		return code == 404
	})
	if got := p.namesOnDisk(); !slices.Equal(got, []string{"keep", "change", "add"}) {
		t.Errorf("file has servers %v", got)
	}
	evs := s.waitEvents(10*time.Second, "config.reloaded", func(evs []sseEvent) bool { return len(reloads(t, evs, "")) > 0 })
	r := reloads(t, evs, "")[0]
	if r.Source != "api" || r.Path != p.configPath() || !slices.Equal(r.Added, []string{"add"}) ||
		!slices.Equal(r.Removed, []string{"drop"}) || !slices.Equal(r.Changed, []string{"change"}) {
		t.Errorf("config.reloaded = %+v", r)
	}

	// The write was atomic: mode 0600, nothing left beside it.
	st, err := os.Stat(p.configPath())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("config file mode %v %v", st.Mode(), err)
	}
	entries, _ := os.ReadDir(p.DataDir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// TestConfigRestartRequired: listen and data_dir are saved and listed, the daemon keeps
// serving where it is.
func TestConfigRestartRequired(t *testing.T) {
	p := startProxy(t, servers())
	cur, _, _ := p.getConfig()
	cur["listen"] = "127.0.0.1:18999"
	cur["data_dir"] = filepath.Join(t.TempDir(), "elsewhere")
	code, res, body := p.apply(cur)
	if code != 200 {
		t.Fatalf("apply: %d %s", code, body)
	}
	got := slices.Sorted(slices.Values(res.RestartRequired))
	if !slices.Equal(got, []string{"data_dir", "listen"}) {
		t.Errorf("restart_required = %v", res.RestartRequired)
	}
	saved, err := config.Load(p.configPath())
	if err != nil || saved.Listen != "127.0.0.1:18999" || saved.DataDir != cur["data_dir"] {
		t.Errorf("saved config: %+v %v", saved, err)
	}
	if code, _ := p.do("GET", "/api/v1/status", nil, nil); code != 200 {
		t.Errorf("daemon stopped answering on its address: %d", code)
	}
	again, _, _ := p.getConfig()
	if again["listen"] != "127.0.0.1:18999" {
		t.Errorf("GET config listen = %v", again["listen"])
	}
	// Applying the same again needs no restart any more.
	if _, res, _ := p.apply(again); len(res.RestartRequired) != 0 {
		t.Errorf("second apply restart_required = %v", res.RestartRequired)
	}
}

// TestConfigRedaction: GET /config hides the API key and literal env and header values but
// shows references as written; sending "********" back keeps the current values (the server
// is unchanged, its process stays and still sees the value); no response of GET, validate
// or apply, successful or not, contains a secret.
func TestConfigRedaction(t *testing.T) {
	const envLiteral, hdrLiteral = "env-literal-value-5f1c", "Bearer header-literal-value-9a2e"
	t.Setenv("MCPPROXY_TEST_REF_VAR", "referenced-env-value-77d0")
	httpURL, _ := startFixtureHTTP(t, "http")
	sec := stdioFixture(t, "sec")
	sec["env"] = map[string]string{"LITERAL_TOKEN": envLiteral, "REF_TOKEN": "${env:MCPPROXY_TEST_REF_VAR}", "EMPTY": ""}
	cfg := servers(sec,
		map[string]any{"name": "web", "url": httpURL, "quarantined": false, "headers": map[string]string{"Authorization": hdrLiteral}},
		map[string]any{"name": "vault", "command": "x", "enabled": false, "env": map[string]string{"GH": "${secret:GH_TOKEN}"}},
	)
	p := startProxy(t, cfg)
	p.waitState("sec", 20*time.Second, actors.StateReady)
	p.waitState("web", 20*time.Second, actors.StateReady)
	secPID := p.fixturePID("sec")
	secrets := []string{p.Key, envLiteral, hdrLiteral, "header-literal-value", "referenced-env-value"}
	var bodies [][]byte
	check := func(what string, body []byte) {
		t.Helper()
		bodies = append(bodies, body)
		for _, s := range secrets {
			if strings.Contains(string(body), s) {
				t.Errorf("%s response contains %q: %s", what, s, body)
			}
		}
	}

	cur, _, body := p.getConfig()
	check("GET config", body)
	if cur["api_key"] != config.Redacted {
		t.Errorf("api_key shown as %v", cur["api_key"])
	}
	list := serverList(t, cur)
	env := list[0]["env"].(map[string]any)
	if env["LITERAL_TOKEN"] != config.Redacted || env["REF_TOKEN"] != "${env:MCPPROXY_TEST_REF_VAR}" || env["EMPTY"] != "" {
		t.Errorf("sec env shown as %v", env)
	}
	if h := list[1]["headers"].(map[string]any); h["Authorization"] != config.Redacted {
		t.Errorf("web headers shown as %v", h)
	}
	if e := list[2]["env"].(map[string]any); e["GH"] != "${secret:GH_TOKEN}" {
		t.Errorf("secret reference shown as %v", e["GH"])
	}

	var v struct {
		Valid  bool                `json:"valid"`
		Errors []config.FieldError `json:"errors"`
	}
	code, body := p.do("POST", "/api/v1/config/validate", cur, &v)
	check("validate", body)
	if code != 200 || !v.Valid || v.Errors == nil || len(v.Errors) != 0 {
		t.Errorf("validate of GET's own output: %d %s", code, body)
	}

	// Send it back with one server added: the placeholders keep the values.
	before := p.readConfigFile()
	next := withServers(cur, append(list, disabledServer(t, "extra"))...)
	code, res, body := p.apply(next)
	check("apply", body)
	if code != 200 || !slices.Equal(res.Added, []string{"extra"}) || !slices.Equal(res.Unchanged, []string{"sec", "vault", "web"}) {
		t.Fatalf("apply of the redacted config: %d %s", code, body)
	}
	after := p.readConfigFile()
	for _, s := range []string{envLiteral, hdrLiteral, p.Key, "${env:MCPPROXY_TEST_REF_VAR}", "${secret:GH_TOKEN}"} {
		if !strings.Contains(string(after), s) {
			t.Errorf("file lost %q after the apply:\nbefore %s\nafter %s", s, before, after)
		}
	}
	if strings.Contains(string(after), config.Redacted) {
		t.Errorf("placeholder written to the file:\n%s", after)
	}
	if got := p.fixturePID("sec"); got != secPID {
		t.Errorf("sec restarted: %d -> %d", secPID, got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := p.D.Client.CallTool(ctx, "sec:env", map[string]any{}, nil, 0, nil)
	if err != nil || !strings.Contains(resultText(out), "LITERAL_TOKEN="+envLiteral) {
		t.Errorf("sec does not see its env value: %v", err)
	}

	// Failures do not echo secrets either: a placeholder without a value, a bad server next
	// to the secrets, a literal value that is not valid.
	bad1 := withServers(cur, append(slices.Clone(list), map[string]any{"name": "new", "command": "x", "env": map[string]string{"K": config.Redacted}})...)
	code, res, body = p.apply(bad1)
	check("apply with a placeholder and nothing to keep", body)
	if code != 400 || res.Code != "INVALID_ARGUMENT" || len(res.Errors) != 1 || res.Errors[0].Field != "mcpServers[3].env.K" {
		t.Errorf("placeholder without a value: %d %s", code, body)
	}
	bad2 := map[string]any{"api_key": p.Key, "mcpServers": []any{
		map[string]any{"name": "s", "command": "x", "env": map[string]string{"T": envLiteral, "U": envLiteral + "${secret:"},
			"headers": map[string]string{"Authorization": hdrLiteral + "\r\nX: y"}, "comand": envLiteral},
	}}
	for _, route := range []string{"/api/v1/config/validate", "/api/v1/config/apply"} {
		code, body := p.do("POST", route, bad2, nil)
		check(route+" of an invalid config", body)
		if (route == "/api/v1/config/apply") != (code == 400) || !strings.Contains(string(body), "mcpServers[0].comand") {
			t.Errorf("%s: %d %s", route, code, body)
		}
	}
	if len(bodies) < 6 {
		t.Fatalf("checked %d responses", len(bodies))
	}
}

// TestConfigInvalidChangesNothing: validate and apply name the field of every problem; an
// invalid apply is a 400 with the same errors and leaves the file (byte for byte), the
// running config and the server processes as they were.
func TestConfigInvalidChangesNothing(t *testing.T) {
	mk := marker(t)
	p := startProxy(t, servers(stdioFixture(t, "a", "--name", "a-"+mk)))
	p.waitState("a", 20*time.Second, actors.StateReady)
	pid := p.fixturePID("a")
	fileBefore := p.readConfigFile()
	_, _, getBefore := p.getConfig()
	s := openSSE(t, p, "/events", keyHeader(p))

	cases := []struct{ name, body, field string }{
		{"duplicate names", `{"mcpServers":[{"name":"x","command":"c"},{"name":"x","command":"c"}]}`, "mcpServers[1].name"},
		{"neither command nor url", `{"mcpServers":[{"name":"x","command":"c"},{"name":"y","url":"http://127.0.0.1:1/"},{"name":"z"}]}`, "mcpServers[2].command"},
		{"bad listen", `{"listen":"nowhere","mcpServers":[]}`, "listen"},
		{"unknown field", `{"mcpServers":[{"name":"x","command":"c","comand":"y"}]}`, "mcpServers[0].comand"},
		{"unknown top-level field", `{"mcpServers":[],"tool_limit":3}`, "tool_limit"},
		{"bad duration", `{"call_tool_timeout":"5 parsecs","mcpServers":[]}`, "call_tool_timeout"},
		{"wrong type", `{"tools_limit":"many","mcpServers":[]}`, "tools_limit"},
		{"wrong type in a server", `{"mcpServers":[{"name":"x","command":"c","args":"-v"}]}`, "mcpServers[0].args"},
		{"not JSON", `{"mcpServers":[`, "$"},
		{"empty body", ``, "$"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v struct {
				Valid  bool                `json:"valid"`
				Errors []config.FieldError `json:"errors"`
			}
			code, body := p.do("POST", "/api/v1/config/validate", c.body, &v)
			if code != 200 || v.Valid || !hasField(v.Errors, c.field) {
				t.Errorf("validate: %d %s, want valid=false naming %s", code, body, c.field)
			}
			for _, e := range v.Errors {
				if e.Field == "" || e.Message == "" {
					t.Errorf("error without field or message: %+v", e)
				}
			}
			code, res, body := p.apply(c.body)
			if code != 400 || res.Code != "INVALID_ARGUMENT" || res.Error == "" || !hasField(res.Errors, c.field) || res.Applied {
				t.Errorf("apply: %d %s, want 400 INVALID_ARGUMENT naming %s", code, body, c.field)
			}
			if !slices.EqualFunc(res.Errors, v.Errors, func(a, b config.FieldError) bool { return a == b }) {
				t.Errorf("apply errors %v differ from validate's %v", res.Errors, v.Errors)
			}
		})
	}
	if got := p.readConfigFile(); string(got) != string(fileBefore) {
		t.Errorf("file changed:\nbefore %s\nafter %s", fileBefore, got)
	}
	if _, _, got := p.getConfig(); string(got) != string(getBefore) {
		t.Errorf("running config changed:\nbefore %s\nafter %s", getBefore, got)
	}
	if got := p.fixturePID("a"); got != pid {
		t.Errorf("a restarted: %d -> %d", pid, got)
	}
	// A valid apply after all that is the first config.reloaded on the stream.
	cur, _, _ := p.getConfig()
	if code, _, body := p.apply(cur); code != 200 {
		t.Fatalf("valid apply: %d %s", code, body)
	}
	evs := s.waitEvents(10*time.Second, "config.reloaded", func(evs []sseEvent) bool { return len(reloads(t, evs, "")) > 0 })
	if r := reloads(t, evs, ""); len(r) != 1 || r[0].Source != "api" || len(r[0].Added)+len(r[0].Removed)+len(r[0].Changed) != 0 {
		t.Errorf("reloads: %+v", r)
	}
}

func hasField(errs []config.FieldError, field string) bool {
	return slices.ContainsFunc(errs, func(e config.FieldError) bool { return e.Field == field })
}

// TestConfigFileEdits: an edit of the file is applied as a diff (config.reloaded source
// "file"), the proxy's own writes are not taken for edits, and an invalid edit keeps the
// running config, is kept for the doctor, and is forgotten once the file is fixed.
func TestConfigFileEdits(t *testing.T) {
	mk := marker(t)
	p := startProxy(t, servers(stdioFixture(t, "a", "--name", "a-"+mk), stdioFixture(t, "b", "--name", "b-"+mk)))
	p.waitState("a", 20*time.Second, actors.StateReady)
	p.waitState("b", 20*time.Second, actors.StateReady)
	pidA := p.fixturePID("a")
	s := openSSE(t, p, "/events", keyHeader(p))

	edit := func(mutate func(c *config.Config)) {
		t.Helper()
		c, errs := config.Parse(p.readConfigFile())
		if len(errs) > 0 {
			t.Fatalf("file does not parse: %v", errs)
		}
		mutate(c)
		data, err := config.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		// Written in place, as an editor without atomic saves would.
		if err := os.WriteFile(p.configPath(), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fileReloads := func(n int) []reloaded {
		t.Helper()
		evs := s.waitEvents(15*time.Second, fmt.Sprintf("%d file reloads", n), func(evs []sseEvent) bool { return len(reloads(t, evs, "file")) >= n })
		return reloads(t, evs, "file")
	}

	t.Run("edit reloads", func(t *testing.T) {
		edit(func(c *config.Config) {
			f := stdioFixture(t, "c", "--name", "c-"+mk)
			c.Servers = append(c.Servers, config.ServerConfig{Name: "c", Command: f["command"].(string), Args: f["args"].([]string), Quarantined: new(false)})
			for i := range c.Servers {
				if c.Servers[i].Name == "b" {
					c.Servers[i].Args = append(c.Servers[i].Args, "--tools", "3")
				}
			}
		})
		r := fileReloads(1)[0]
		if !slices.Equal(r.Added, []string{"c"}) || !slices.Equal(r.Changed, []string{"b"}) || len(r.Removed) != 0 || r.Path != p.configPath() {
			t.Errorf("file reload = %+v", r)
		}
		p.waitState("c", 20*time.Second, actors.StateReady)
		want := directToolCount(t) + 3
		waitFor(t, 20*time.Second, "b to restart with 3 more tools", func() bool {
			b := p.server("b")
			return b.State == actors.StateReady && b.ToolsCount == want
		})
		if got := p.fixturePID("a"); got != pidA {
			t.Errorf("a restarted by an edit that did not touch it: %d -> %d", pidA, got)
		}
	})

	t.Run("own writes are not reloads", func(t *testing.T) {
		pidC := p.fixturePID("c")
		before := p.readConfigFile()
		if code, body := p.do("POST", "/api/v1/servers/b/disable", nil, nil); code != 200 {
			t.Fatalf("disable: %d %s", code, body)
		}
		if code, body := p.do("POST", "/api/v1/servers/b/quarantine", map[string]bool{"quarantined": true}, nil); code != 200 {
			t.Fatalf("quarantine: %d %s", code, body)
		}
		waitFor(t, 5*time.Second, "the flag changes in the file", func() bool { return string(p.readConfigFile()) != string(before) })
		// Several debounce periods pass with no file reload: the watcher recognised the
		// writes as the proxy's own. (A bounded wait for something that must not happen.)
		deadline := time.After(4 * config.DefaultDebounce)
	quiet:
		for {
			select {
			case <-deadline:
				break quiet
			case <-s.notify:
				if n := len(reloads(t, s.Events(), "file")); n != 1 {
					t.Fatalf("the proxy's own write was reloaded: %d file reloads", n)
				}
			}
		}
		// The watcher still works: the next real edit is the second file reload, and it
		// finds exactly that edit (b's flags are already what the file says).
		edit(func(c *config.Config) {
			c.Servers = slices.DeleteFunc(c.Servers, func(s config.ServerConfig) bool { return s.Name == "c" })
		})
		all := fileReloads(2)
		if len(all) != 2 || !slices.Equal(all[1].Removed, []string{"c"}) || len(all[1].Changed) != 0 || len(all[1].Added) != 0 {
			t.Errorf("file reloads = %+v", all)
		}
		if got := p.fixturePID("a"); got != pidA {
			t.Errorf("a restarted: %d -> %d", pidA, got)
		}
		waitFor(t, 10*time.Second, "c's process to be killed", func() bool { return !processAlive(pidC) })
	})

	t.Run("invalid edit keeps the running config", func(t *testing.T) {
		_, _, running := p.getConfig()
		n := len(reloads(t, s.Events(), "file"))
		bad := strings.Replace(string(p.readConfigFile()), `"name": "a"`, `"name": "a", "comand": "oops"`, 1)
		if err := os.WriteFile(p.configPath(), []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the invalid edit to be recorded", func() bool { return p.D.ConfigErrors.Load() != nil })
		if errs := *p.D.ConfigErrors.Load(); !hasField(errs, "mcpServers[0].comand") {
			t.Errorf("ConfigErrors = %v", errs)
		}
		var doc struct {
			Healthy bool `json:"healthy"`
			Checks  []struct {
				Name, Status, Message string
			} `json:"checks"`
		}
		p.do("GET", "/api/v1/doctor", nil, &doc)
		found := false
		for _, c := range doc.Checks {
			found = found || c.Status != "ok" && strings.Contains(c.Message, "mcpServers[0].comand")
		}
		if !found {
			t.Errorf("doctor does not show the invalid edit: %+v", doc)
		}
		if _, _, got := p.getConfig(); string(got) != string(running) {
			t.Errorf("running config changed by an invalid edit")
		}
		if got := p.fixturePID("a"); got != pidA {
			t.Errorf("a restarted by an invalid edit")
		}
		if got := len(reloads(t, s.Events(), "file")); got != n {
			t.Errorf("invalid edit produced a reload")
		}

		// Fixing the file applies it and clears the errors.
		fixed := strings.Replace(bad, `, "comand": "oops"`, "", 1)
		var m map[string]any
		if err := json.Unmarshal([]byte(fixed), &m); err != nil {
			t.Fatalf("test bug: %v\n%s", err, fixed)
		}
		m["tools_limit"] = 7
		data, _ := json.MarshalIndent(m, "", "  ")
		if err := os.WriteFile(p.configPath(), data, 0o600); err != nil {
			t.Fatal(err)
		}
		fileReloads(n + 1)
		if p.D.ConfigErrors.Load() != nil {
			t.Errorf("errors kept after the file was fixed: %v", *p.D.ConfigErrors.Load())
		}
		if n := len(p.searchHTTP("").Tools); n != 7 {
			t.Errorf("tools_limit from the fixed file not applied: %d tools", n)
		}
	})
}

// TestConfigFileReloadKeepsFileAsWritten: after a file edit is applied, the proxy's next own
// write (a flag change) must not add settings the user never wrote (defaults such as
// listen, tools_limit, call_tool_timeout), and GET /config shows the file as written.
func TestConfigFileReloadKeepsFileAsWritten(t *testing.T) {
	p := startProxy(t, servers(disabledServer(t, "a")))
	s := openSSE(t, p, "/events", keyHeader(p))
	c, errs := config.Parse(p.readConfigFile())
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	c.Servers = append(c.Servers, config.ServerConfig{Name: "b", Command: "x", Enabled: new(false)})
	data, _ := config.Marshal(c)
	if err := os.WriteFile(p.configPath(), data, 0o600); err != nil {
		t.Fatal(err)
	}
	s.waitEvents(15*time.Second, "file reload", func(evs []sseEvent) bool { return len(reloads(t, evs, "file")) == 1 })
	cur, _, _ := p.getConfig()
	for _, k := range []string{"listen", "tools_limit", "call_tool_timeout", "restart_concurrency", "docker_isolation"} {
		if _, ok := cur[k]; ok {
			t.Errorf("GET config shows %s = %v, which the file does not set", k, cur[k])
		}
	}
	before := p.readConfigFile()
	if code, body := p.do("POST", "/api/v1/servers/a/quarantine", map[string]bool{"quarantined": true}, nil); code != 200 {
		t.Fatalf("quarantine: %d %s", code, body)
	}
	// A flag change is answered once it is durable in the store; the file follows at once
	// (actors' runSaver).
	waitFor(t, 5*time.Second, "the flag change in the file", func() bool { return string(p.readConfigFile()) != string(before) })
	var onDisk map[string]any
	if err := json.Unmarshal(p.readConfigFile(), &onDisk); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"listen", "tools_limit", "call_tool_timeout", "restart_concurrency", "docker_isolation"} {
		if _, ok := onDisk[k]; ok {
			t.Errorf("flag save wrote %s = %v into the file", k, onDisk[k])
		}
	}
}

// TestConfigConcurrentApplies fires several applies at once: they are serialised, so the
// end state (servers, GET config, the file) is exactly one of them, the file is valid, and
// the server they all keep is never restarted.
func TestConfigConcurrentApplies(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "keep")))
	p.waitState("keep", 20*time.Second, actors.StateReady)
	pid := p.fixturePID("keep")
	cur, _, _ := p.getConfig()
	keep := serverList(t, cur)[0]

	const n = 6
	sets := make([][]string, n)
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		sets[i] = []string{"keep", fmt.Sprintf("s%d-a", i), fmt.Sprintf("s%d-b", i)}
		cfg := withServers(cur, keep, disabledServer(t, sets[i][1]), disabledServer(t, sets[i][2]))
		wg.Go(func() {
			var res applyResponse
			codes[i], _ = p.do("POST", "/api/v1/config/apply", cfg, &res)
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("apply %d: %d", i, c)
		}
	}
	onDisk := p.namesOnDisk()
	if !slices.ContainsFunc(sets, func(s []string) bool { return slices.Equal(s, onDisk) }) {
		t.Fatalf("file holds %v, not one of the applies", onDisk)
	}
	got, _, _ := p.getConfig()
	var running []string
	for _, e := range serverList(t, got) {
		running = append(running, e["name"].(string))
	}
	if !slices.Equal(running, onDisk) {
		t.Errorf("running config %v, file %v", running, onDisk)
	}
	var list struct {
		Servers []actors.Server `json:"servers"`
	}
	p.do("GET", "/api/v1/servers", nil, &list)
	var names []string
	for _, s := range list.Servers {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, slices.Sorted(slices.Values(onDisk))) {
		t.Errorf("servers %v, file %v", names, onDisk)
	}
	if got := p.fixturePID("keep"); got != pid {
		t.Errorf("keep restarted: %d -> %d", pid, got)
	}
}

// TestConfigFileEditWithPlaceholderIsInvalid: "********" in the file cannot mean "keep the
// current value" (the next start would load it literally), so such an edit is invalid like
// any other: the running config stays, and the doctor shows the field.
func TestConfigFileEditWithPlaceholderIsInvalid(t *testing.T) {
	off := disabledServer(t, "a")
	off["env"] = map[string]string{"TOKEN": "literal-value-3b9e"}
	p := startProxy(t, servers(off))
	s := openSSE(t, p, "/events", keyHeader(p))
	_, _, before := p.getConfig()
	edited := strings.Replace(string(p.readConfigFile()), "literal-value-3b9e", config.Redacted, 1)
	if err := os.WriteFile(p.configPath(), []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the edit to be recorded as invalid", func() bool { return p.D.ConfigErrors.Load() != nil })
	if errs := *p.D.ConfigErrors.Load(); !hasField(errs, "mcpServers[0].env.TOKEN") {
		t.Errorf("ConfigErrors = %v", errs)
	}
	if _, _, got := p.getConfig(); string(got) != string(before) {
		t.Errorf("running config changed")
	}
	if r := reloads(t, s.Events(), "file"); len(r) != 0 {
		t.Errorf("reloaded: %+v", r)
	}
}
