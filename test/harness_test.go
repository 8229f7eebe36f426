// Package test holds mcpproxy's end-to-end tests: the real daemon (in-process through
// cmd/mcpproxy/daemon, or the built binary) on 127.0.0.1:0 with a temporary data dir,
// against real upstream MCP servers: test/fixture (stdio, http, sse) and
// @modelcontextprotocol/server-everything from test/node_modules.
//
// This file is the shared harness: building binaries once, starting daemons and fixtures,
// REST helpers, and bounded polling.
package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/cmd/mcpproxy/daemon"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// repoRoot is the module root (the parent of test/).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// binaries builds cmd/mcpproxy (with its guard, cmd/mcpproxy-guard, beside it as `make build`
// installs it), test/fixture and test/hostile once per test binary run and returns the
// directory holding "mcpproxy", "mcpproxy-guard", "fixture", "hostile" and "confclient".
func binaries(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mcpproxy-bin-")
		if err != nil {
			binErr = err
			return
		}
		binDir = dir
		for _, b := range []struct{ out, pkg string }{{"mcpproxy", "./cmd/mcpproxy"}, {"mcpproxy-guard", "./cmd/mcpproxy-guard"}, {"fixture", "./test/fixture"}, {"hostile", "./test/hostile"}, {"confclient", "./test/confclient"}} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b.out), b.pkg)
			cmd.Dir = repoRoot()
			if out, err := cmd.CombinedOutput(); err != nil {
				binErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// fixtureBin is the path of the built fixture.
func fixtureBin(t testing.TB) string { return filepath.Join(binaries(t), "fixture") }

// everythingCmd returns the command line that runs server-everything over stdio with the
// node on PATH, or skips... no: fails, because CI installs it (npm ci in test/).
func everythingCmd(t testing.TB) (string, []string) {
	t.Helper()
	entry := filepath.Join(repoRoot(), "test", "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")
	if _, err := os.Stat(entry); err != nil {
		t.Fatalf("server-everything is not installed (run npm ci in test/): %v", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found: %v", err)
	}
	return node, []string{entry, "stdio"}
}

// startFixtureHTTP starts the fixture with --transport http or sse and returns its URL.
// The process is stopped at cleanup.
func startFixtureHTTP(t testing.TB, transport string, extra ...string) (url string, cmd *exec.Cmd) {
	t.Helper()
	args := append([]string{"--transport", transport, "--listen", "127.0.0.1:0"}, extra...)
	return startListening(t, fixtureBin(t), args...)
}

// startListening starts a test server binary that prints "LISTENING <url>" on stdout once
// it serves, and returns that URL. The process is stopped at cleanup.
func startListening(t testing.TB, bin string, args ...string) (url string, cmd *exec.Cmd) {
	t.Helper()
	cmd = exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				lines <- u
			}
		}
	}()
	select {
	case url = <-lines:
		return url, cmd
	case <-time.After(20 * time.Second):
		t.Fatalf("%s %v did not print its URL", filepath.Base(bin), args)
	}
	return "", nil
}

// writeConfig writes a config file into dir and returns its path.
func writeConfig(t testing.TB, dir string, cfg any) string {
	t.Helper()
	var data []byte
	switch c := cfg.(type) {
	case string:
		data = []byte(c)
	default:
		var err error
		if data, err = json.MarshalIndent(c, "", "  "); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "mcp_config.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// proxy is a running daemon under test, in-process or as a child process.
type proxy struct {
	t       testing.TB
	URL     string // http://127.0.0.1:PORT
	Key     string
	DataDir string
	Socket  string
	D       *daemon.Daemon // nil for a process
	Cmd     *exec.Cmd      // nil in-process
	stderr  *syncBuffer
	client  *http.Client
}

// servers builds a config with the given server entries (maps as in the config file).
func servers(entries ...map[string]any) map[string]any {
	list := make([]any, len(entries))
	for i, e := range entries {
		list[i] = e
	}
	return map[string]any{"mcpServers": list}
}

// stdioFixture is a config entry for the fixture over stdio, not quarantined.
func stdioFixture(t testing.TB, name string, args ...string) map[string]any {
	return map[string]any{"name": name, "command": fixtureBin(t), "args": append([]string{"--name", name}, args...), "quarantined": false}
}

// startProxy starts the daemon in-process on 127.0.0.1:0 with a fresh data dir holding cfg
// (a map, or a JSON string). It is shut down at cleanup. tune may change the daemon's
// options (bounds and intervals) before it starts.
func startProxy(t testing.TB, cfg any, tune ...func(*daemon.Options)) *proxy {
	t.Helper()
	// A data dir that does not exist yet, so the daemon creates it (0700).
	dir := filepath.Join(t.TempDir(), "data")
	return startProxyIn(t, dir, cfg, tune...)
}

// startProxyIn starts the daemon in-process on an existing data dir; cfg nil keeps the
// config file that is there.
func startProxyIn(t testing.TB, dir string, cfg any, tune ...func(*daemon.Options)) *proxy {
	t.Helper()
	if cfg != nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		writeConfig(t, dir, cfg)
	}
	opts := daemon.Options{
		DataDir: dir, Listen: "127.0.0.1:0", Out: io.Discard, BackoffBase: 200 * time.Millisecond, HealthEvery: 300 * time.Millisecond,
		Logger: testLogger(t),
	}
	for _, f := range tune {
		f(&opts)
	}
	d, err := daemon.Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	p := &proxy{t: t, URL: d.URL(), Key: d.APIKey(), DataDir: dir, Socket: d.SocketPath, D: d, client: &http.Client{Timeout: 30 * time.Second, Transport: validatingTransport(t, nil)}}
	t.Cleanup(func() { p.Stop() })
	return p
}

// Stop shuts an in-process daemon down (bounded) or SIGTERMs a process and waits.
func (p *proxy) Stop() {
	if p.D != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := p.D.Shutdown(ctx); err != nil {
			p.t.Errorf("shutdown: %v", err)
		}
		p.client.CloseIdleConnections()
		return
	}
	if p.Cmd != nil && p.Cmd.ProcessState == nil {
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = p.Cmd.Process.Kill()
			<-done
			p.t.Errorf("daemon did not stop within 20 s of SIGTERM")
		}
	}
}

var listenRE = regexp.MustCompile(`listen=(127\.0\.0\.1:\d+)`)

// startProxyProcess runs the built mcpproxy binary on dir (writing cfg when non-nil) and
// waits until it listens. Extra environment entries are added to the daemon's environment.
func startProxyProcess(t testing.TB, dir string, cfg any, env ...string) *proxy {
	t.Helper()
	if cfg != nil {
		writeConfig(t, dir, cfg)
	}
	cmd := exec.Command(filepath.Join(binaries(t), "mcpproxy"), "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--log-level", "info")
	cmd.Env = append(os.Environ(), env...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	cmd.Stdout = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, DataDir: dir, Socket: filepath.Join(dir, "mcpproxy.sock"), Cmd: cmd, stderr: stderr, client: &http.Client{Timeout: 30 * time.Second, Transport: validatingTransport(t, nil)}}
	t.Cleanup(func() { p.Stop() })
	waitFor(t, 20*time.Second, "daemon to listen", func() bool {
		if m := listenRE.FindStringSubmatch(stderr.String()); m != nil {
			p.URL = "http://" + m[1]
			return true
		}
		return false
	})
	p.Key = readKey(t, dir)
	return p
}

// Log is what a daemon process wrote to stderr and stdout so far.
func (p *proxy) Log() string {
	if p.stderr == nil {
		return ""
	}
	return p.stderr.String()
}

func readKey(t testing.TB, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "mcp_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c.APIKey
}

// do sends a request with the API key and decodes a JSON response into out (when non-nil).
// It returns the status code and the raw body.
func (p *proxy) do(method, path string, body any, out any) (int, []byte) {
	p.t.Helper()
	return p.doWith(method, path, body, out, map[string]string{"X-API-Key": p.Key})
}

// doWith is do with explicit headers (no key unless given).
func (p *proxy) doWith(method, path string, body any, out any, headers map[string]string) (int, []byte) {
	p.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			p.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, p.URL+path, r)
	if err != nil {
		p.t.Fatal(err)
	}
	for k, v := range headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			p.t.Fatalf("%s %s: decoding %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode, data
}

// socketClient is an HTTP client that dials the daemon's Unix socket.
func (p *proxy) socketClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", p.Socket)
		},
	}}
}

// server fetches one server's API object.
func (p *proxy) server(name string) actors.Server {
	p.t.Helper()
	var out struct {
		Server actors.Server `json:"server"`
	}
	if code, body := p.do("GET", "/api/v1/servers/"+name, nil, &out); code != 200 {
		p.t.Fatalf("GET server %s: %d %s", name, code, body)
	}
	return out.Server
}

// waitState polls until the server is in one of the states.
func (p *proxy) waitState(name string, timeout time.Duration, states ...actors.State) actors.Server {
	p.t.Helper()
	var last actors.Server
	waitFor(p.t, timeout, fmt.Sprintf("server %s to reach %v", name, states), func() bool {
		last = p.server(name)
		for _, s := range states {
			if last.State == s {
				return true
			}
		}
		return false
	})
	return last
}

// waitFor polls cond every 20 ms until it holds or timeout passes, then fails the test.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state is the field after the parenthesised command name.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// processesWithArg lists live pids whose command line contains needle (e.g. a temp path
// unique to one test).
func processesWithArg(needle string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(needle)) {
			continue
		}
		if processAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// describeProcesses says, for a failure message, what each pid is: its state, parent and
// command line from /proc, so that a process found alive can be told from one dying.
func describeProcesses(pids []int) string {
	var b strings.Builder
	for _, pid := range pids {
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		state, ppid := "?", "?"
		if len(fields) > 1 {
			state, ppid = fields[0], fields[1]
		}
		fmt.Fprintf(&b, "[pid %d state %s ppid %s: %s]", pid, state, ppid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
	}
	return b.String()
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reading test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// execCommand is exec.Command, named so tests read plainly.
func execCommand(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }
