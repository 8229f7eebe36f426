package test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/cmd/mcpproxy/daemon"
	"github.com/mcpproxy/mcpproxy/http/dashboard"
)

// chromiumPath is Debian's chromium, which CI installs; CHROMIUM_PATH overrides it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CHROMIUM_PATH")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the dashboard test needs Chromium at %s (Debian: apt-get install -y chromium; or set CHROMIUM_PATH): %v", path, err)
	}
	return path
}

// playwrightNode returns node, after checking that test/node_modules has playwright-core.
func playwrightNode(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(repoRoot(), "test", "node_modules", "playwright-core", "package.json")); err != nil {
		t.Fatalf("playwright-core is not installed (run npm ci in test/): %v", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found: %v", err)
	}
	return node
}

// TestDashboardShell checks how the page and its files are served, without a browser: no
// key needed, security headers, content types, revalidation, and the Host guard.
func TestDashboardShell(t *testing.T) {
	p := startProxy(t, servers())
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(t *testing.T, method, path string, headers map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, p.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range headers {
			if k == "Host" {
				req.Host = v
				continue
			}
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	page, _ := get(t, "GET", "/", nil)
	etag := page.Header.Get("ETag")
	if etag == "" {
		t.Fatalf("GET / has no ETag")
	}

	cases := []struct {
		name, method, path string
		headers            map[string]string
		status             int
		contentType        string
		bodyHas            string
	}{
		{"page without key", "GET", "/", nil, 200, "text/html; charset=utf-8", `<script src="/dashboard/app.js" defer></script>`},
		{"page head", "HEAD", "/", nil, 200, "text/html; charset=utf-8", ""},
		{"page with apikey in URL", "GET", "/?apikey=whatever", nil, 200, "text/html; charset=utf-8", "<title>mcpproxy</title>"},
		{"script", "GET", "/dashboard/app.js", nil, 200, "text/javascript; charset=utf-8", "EventSource"},
		{"style sheet", "GET", "/dashboard/app.css", nil, 200, "text/css; charset=utf-8", ".badge"},
		{"revalidation", "GET", "/", map[string]string{"If-None-Match": etag}, 304, "", ""},
		{"unknown file", "GET", "/dashboard/nope.js", nil, 404, "application/json; charset=utf-8", `"code":"NOT_FOUND"`},
		{"embedded file not meant to be served", "GET", "/dashboard/dashboard.go", nil, 404, "", `"code":"NOT_FOUND"`},
		{"foreign host", "GET", "/", map[string]string{"Host": "evil.example"}, 403, "", `"code":"FORBIDDEN"`},
		{"api still keyed", "GET", "/api/v1/servers", nil, 401, "", `"code":"UNAUTHORIZED"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, tc.method, tc.path, tc.headers)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.status, body)
			}
			if tc.contentType != "" && resp.Header.Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", resp.Header.Get("Content-Type"), tc.contentType)
			}
			if !bytes.Contains(body, []byte(tc.bodyHas)) {
				t.Errorf("body does not contain %q: %.300s", tc.bodyHas, body)
			}
			if tc.method == "HEAD" && len(body) != 0 {
				t.Errorf("HEAD has a body of %d bytes", len(body))
			}
			if tc.status == 200 {
				for h, want := range map[string]string{
					"X-Content-Type-Options": "nosniff",
					"Referrer-Policy":        "no-referrer",
					"X-Frame-Options":        "DENY",
					"Cache-Control":          "no-cache",
				} {
					if got := resp.Header.Get(h); got != want {
						t.Errorf("%s = %q, want %q", h, got, want)
					}
				}
				csp := resp.Header.Get("Content-Security-Policy")
				for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
					if !strings.Contains(csp, want) {
						t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
					}
				}
			}
		})
	}
}

// TestDashboardScriptBuildsNoHTML guards the escaping rule: the script never hands a string
// to the HTML parser, so upstream-provided text can only ever be text.
func TestDashboardScriptBuildsNoHTML(t *testing.T) {
	for _, name := range append([]string{dashboard.Index}, dashboard.Assets...) {
		data, err := dashboard.Files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []*regexp.Regexp{
			regexp.MustCompile(`\.(inner|outer)HTML\b`), regexp.MustCompile(`insertAdjacentHTML`),
			regexp.MustCompile(`document\.write`), regexp.MustCompile(`\beval\(`), regexp.MustCompile(`new Function\(`),
			regexp.MustCompile(`https?://`), // nothing loaded from elsewhere
			regexp.MustCompile(`<script>`),  // no inline script (CSP script-src 'self')
			regexp.MustCompile(`\son[a-z]+=`),
		} {
			if loc := bad.FindIndex(data); loc != nil {
				t.Errorf("%s contains %q", name, data[loc[0]:loc[1]])
			}
		}
	}
}

// dashboardXSSDesc is the hostile description the fixture's added tool carries.
const dashboardXSSDesc = `<img src=x onerror="window.__xss=1"> xss probe <b>bold</b> & 'quoted' "text"`

// TestDashboard drives the dashboard in headless Chromium (dashboard.spec.mjs): the page
// loads with the key from the URL, lists the servers, a disable click arrives as an
// event without a reload, a killed upstream shows error/backoff and then ready, a hostile
// tool description is shown as text, a screenshot is saved under test/artifacts, and the
// page reconnects by itself after the daemon restarts on the same address.
func TestDashboard(t *testing.T) {
	browser := chromiumPath(t)
	node := playwrightNode(t)
	artifacts := filepath.Join(repoRoot(), "test", "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(artifacts, "dashboard.png")
	_ = os.Remove(shot)

	p := startProxy(t, servers(stdioFixture(t, "alpha"), stdioFixture(t, "beta"), stdioFixture(t, "gamma")))
	for _, name := range []string{"alpha", "beta", "gamma"} {
		p.waitState(name, 30*time.Second, actors.StateReady)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// The hostile tool: added at run time through the fixture's add_tool, pending review
	// once the proxy has followed the fixture's tools/list_changed, and indexed once approved.
	const xssTool = "xss_probe"
	res, err := p.D.Client.CallTool(ctx, "alpha:add_tool", map[string]any{"name": xssTool, "description": dashboardXSSDesc}, nil, 0, nil)
	if err != nil || res.IsError {
		t.Fatalf("alpha:add_tool: %v %+v", err, res)
	}
	waitFor(t, 20*time.Second, "the hostile tool listed for review", func() bool { return p.server("alpha").ToolsAwaitingReview == 1 })
	if code, body := p.do("POST", "/api/v1/servers/alpha/tools/approve", map[string]any{"tools": []string{xssTool}}, nil); code != 200 {
		t.Fatalf("approve the hostile tool: %d %s", code, body)
	}
	waitFor(t, 20*time.Second, "the hostile tool to be searchable", func() bool {
		var out struct {
			Tools []actors.ToolHit `json:"tools"`
		}
		p.do("GET", "/api/v1/tools?q="+xssTool, nil, &out)
		for _, h := range out.Tools {
			if h.Name == "alpha:"+xssTool && h.Description == dashboardXSSDesc {
				return true
			}
		}
		return false
	})

	steps := map[string]func() error{
		"check-gamma-disabled": func() error {
			if s := p.server("gamma"); s.Enabled || s.State != actors.StateDisabled {
				return fmt.Errorf("gamma via REST: enabled=%v state=%s", s.Enabled, s.State)
			}
			return nil
		},
		"kill-beta": func() error {
			s, err := p.D.Client.Server(ctx, "beta")
			if err != nil {
				return err
			}
			if s.PID <= 0 {
				return fmt.Errorf("beta has no pid (state %s)", s.State)
			}
			return syscall.Kill(s.PID, syscall.SIGKILL)
		},
		"restart-daemon": func() error {
			addr := p.D.Addr()
			p.Stop()
			d, err := daemon.Start(ctx, daemon.Options{
				DataDir: p.DataDir, Listen: addr, Out: io.Discard, BackoffBase: 200 * time.Millisecond, Logger: testLogger(t),
			})
			if err != nil {
				return fmt.Errorf("restart on %s: %w", addr, err)
			}
			p = &proxy{t: t, URL: d.URL(), Key: d.APIKey(), DataDir: p.DataDir, Socket: d.SocketPath, D: d, client: &http.Client{Timeout: 30 * time.Second}}
			restarted := p
			t.Cleanup(restarted.Stop)
			return nil
		},
		"check-alpha-quarantined": func() error {
			if s := p.server("alpha"); !s.Quarantined {
				return fmt.Errorf("alpha via REST: quarantined=%v", s.Quarantined)
			}
			return nil
		},
		"done": func() error {
			if s := p.server("alpha"); s.Quarantined {
				return fmt.Errorf("alpha via REST still quarantined after approve")
			}
			return nil
		},
	}

	done, err := runSpec(t, ctx, node, "dashboard.spec.mjs", steps,
		"DASH_URL="+p.URL, "DASH_KEY="+p.Key, "DASH_CHROMIUM="+browser, "DASH_ARTIFACTS="+artifacts,
		"DASH_XSS_TOOL="+xssTool, "DASH_XSS_DESC="+dashboardXSSDesc, "DASH_USER_DATA="+t.TempDir(),
	)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"check-gamma-disabled", "kill-beta", "restart-daemon", "restart-daemon", "check-alpha-quarantined", "done"}; strings.Join(done, ",") != strings.Join(want, ",") {
		t.Fatalf("steps done = %v, want %v", done, want)
	}

	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 1000 {
		t.Fatalf("screenshot %s is not a PNG (%d bytes)", shot, len(png))
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))

	// The restarted daemon kept gamma's enable from the page's bulk button.
	if s := p.server("gamma"); !s.Enabled {
		t.Errorf("gamma not enabled after the page's enable all: %+v", s)
	}
}

// TestDashboardManage drives the managing panels in headless Chromium
// (dashboard_manage.spec.mjs): add a server with the form and see it connect, read its live
// log, edit it, remove it, import a config, list sessions, validate and apply the config.
// The Go side checks each step against the REST API, the file and the processes.
func TestDashboardManage(t *testing.T) {
	browser := chromiumPath(t)
	node := playwrightNode(t)
	p := startProxy(t, servers(stdioFixture(t, "alpha")))
	p.waitState("alpha", 30*time.Second, actors.StateReady)
	// A session for the sessions list.
	mcpSession(t, p, p.client.Transport, "/mcp")

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// The added server's fixture runs with this marker as its name, so that its processes
	// are told apart from every other process on the machine.
	mark := marker(t) + "-added"
	var addedPID int
	steps := map[string]func() error{
		"check-added": func() error {
			s, err := p.D.Client.Server(ctx, "added")
			if err != nil {
				return err
			}
			if s.Quarantined || s.State != actors.StateReady || s.PID <= 0 {
				return fmt.Errorf("added via REST: %+v", s)
			}
			addedPID = s.PID
			return nil
		},
		"check-edited": func() error {
			cfg, err := p.D.Client.Config(ctx)
			if err != nil {
				return err
			}
			sc, ok := cfg.Server("added")
			if !ok || sc.Env["A"] != "2" || sc.Env["B"] != "3" || len(sc.Env) != 2 {
				return fmt.Errorf("added's entry after edit: %+v", sc)
			}
			return nil
		},
		"check-removed": func() error {
			if code, _ := p.do("GET", "/api/v1/servers/added", nil, nil); code != 404 {
				return fmt.Errorf("added still there: %d", code)
			}
			if addedPID > 0 && processAlive(addedPID) {
				return fmt.Errorf("added's first process %d is alive", addedPID)
			}
			if left := processesWithArg(mark); len(left) > 0 {
				return fmt.Errorf("added's processes outlive it: %s", describeProcesses(left))
			}
			return nil
		},
		"check-applied": func() error {
			if code, _ := p.do("GET", "/api/v1/servers/linear", nil, nil); code != 404 {
				return fmt.Errorf("linear still there after the apply: %d", code)
			}
			return nil
		},
	}
	done, err := runSpec(t, ctx, node, "dashboard_manage.spec.mjs", steps,
		"DASH_URL="+p.URL, "DASH_KEY="+p.Key, "DASH_CHROMIUM="+browser, "DASH_USER_DATA="+t.TempDir(),
		"DASH_FIXTURE="+fixtureBin(t), "DASH_MARK="+mark, "DASH_IMPORT="+filepath.Join(repoRoot(), "test", "testdata", "import", "cursor_mcp.json"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if want := "check-added,check-edited,check-removed,check-applied"; strings.Join(done, ",") != want {
		t.Fatalf("steps done = %v, want %s", done, want)
	}
}

// runSpec runs a browser script of test/ with node and the extra environment, answering
// its "STEP <name>" lines by running steps[name] ("ok", or the error), and logging its
// "LOG <text>" lines. It returns the steps done, and an error with the script's stderr if
// it fails. Node and the Chromium it starts share a process group, so ctx's end kills both.
func runSpec(t *testing.T, ctx context.Context, node, spec string, steps map[string]func() error, env ...string) ([]string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, node, spec)
	cmd.Dir = filepath.Join(repoRoot(), "test")
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var done []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "LOG "):
			t.Log("browser: " + strings.TrimPrefix(line, "LOG "))
		case strings.HasPrefix(line, "STEP "):
			name := strings.TrimPrefix(line, "STEP ")
			reply := "ok"
			if f, ok := steps[name]; !ok {
				reply = "unknown step " + name
			} else if err := f(); err != nil {
				reply = "error: " + strings.ReplaceAll(err.Error(), "\n", " ")
			} else {
				done = append(done, name)
			}
			if _, err := io.WriteString(stdin, reply+"\n"); err != nil {
				t.Errorf("replying to step %s: %v", name, err)
			}
		default:
			t.Log("browser stdout: " + line)
		}
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return done, fmt.Errorf("%s failed (%v) after steps %v:\n%s", spec, err, done, stderr.String())
	}
	return done, nil
}

// TestDashboardTokens runs dashboard_tokens.spec.mjs: the agent tokens panel creates a
// token (shown once, working on /mcp), lists it with its scope, shows a duplicate's error
// and revokes it; afterwards the daemon has no token and the one created is refused.
func TestDashboardTokens(t *testing.T) {
	browser, node := chromiumPath(t), playwrightNode(t)
	p := startProxy(t, servers(stdioFixture(t, "alpha")))
	p.waitState("alpha", 20*time.Second, actors.StateReady)
	artifacts := filepath.Join(repoRoot(), "test", "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	out := runSpecOutput(t, node, "dashboard_tokens.spec.mjs", "DASH_URL="+p.URL, "DASH_KEY="+p.Key, "DASH_CHROMIUM="+browser,
		"DASH_USER_DATA="+t.TempDir(), "DASH_ARTIFACTS="+artifacts)
	m := regexp.MustCompile(`TOKEN (mcpa_\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("the script printed no token:\n%s", out)
	}
	var list struct {
		Tokens []actors.AgentToken `json:"tokens"`
	}
	if p.do("GET", "/api/v1/tokens", nil, &list); len(list.Tokens) != 0 {
		t.Errorf("tokens after the dashboard revoked its one: %+v", list.Tokens)
	}
	if code, _ := p.doWith("GET", "/api/v1/status", nil, nil, map[string]string{"Authorization": "Bearer " + string(m[1])}); code != 401 {
		t.Errorf("the revoked token on REST: %d, want 401", code)
	}
}

// TestDashboardBulk runs dashboard_bulk.spec.mjs: row checkboxes, "Select failed" and a
// restart of the selection with its progress and a summary naming the failed server; the
// daemon then shows that only the selected ready server was restarted.
func TestDashboardBulk(t *testing.T) {
	browser, node := chromiumPath(t), playwrightNode(t)
	dir := t.TempDir()
	p := startProxy(t, servers(stdioFixture(t, "alpha"), stdioFixture(t, "beta"),
		map[string]any{"name": "broken", "command": filepath.Join(dir, "no-such-server"), "quarantined": false}))
	p.waitState("alpha", 20*time.Second, actors.StateReady)
	p.waitState("beta", 20*time.Second, actors.StateReady)
	betaSince := p.server("beta").ConnectedAt
	out := runSpecOutput(t, node, "dashboard_bulk.spec.mjs", "DASH_URL="+p.URL, "DASH_KEY="+p.Key, "DASH_CHROMIUM="+browser,
		"DASH_USER_DATA="+t.TempDir(), "DASH_ARTIFACTS="+filepath.Join(repoRoot(), "test", "artifacts"))
	if !strings.Contains(string(out), "BULK OK") {
		t.Fatalf("the script did not finish:\n%s", out)
	}
	if since := p.server("beta").ConnectedAt; since == nil || betaSince == nil || !since.Equal(*betaSince) {
		t.Errorf("beta was not selected but reconnected (%v -> %v)", betaSince, since)
	}
}

// runSpecOutput runs a browser script of test/ with node and the environment entries added,
// bounded by two minutes (node and its Chromium share a process group, so the bound ends
// both), and returns what it printed; a failure fails the test.
func runSpecOutput(t *testing.T, node, script string, env ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = filepath.Join(repoRoot(), "test")
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return out
}
