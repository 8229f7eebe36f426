package test

// End-to-end tests of the operations routes: GET /api/v1/info, /diagnostics, /doctor and
// /docker/status, and of Docker isolation wired through the daemon with the stand-in docker
// client of test/dockerdouble (a test double: no Docker engine runs here).

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/doctor"
)

var (
	doubleOnce sync.Once
	doubleDir  string
	doubleErr  error
)

// dockerDoubleDir builds test/dockerdouble as "docker" once and returns its directory, to be
// put first on PATH.
func dockerDoubleDir(t testing.TB) string {
	t.Helper()
	doubleOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mcpproxy-dockerdouble-")
		if err != nil {
			doubleErr = err
			return
		}
		doubleDir = dir
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "docker"), "./test/dockerdouble")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			doubleErr = &buildError{err: err, out: string(out)}
		}
	})
	if doubleErr != nil {
		t.Fatal(doubleErr)
	}
	return doubleDir
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string {
	return "go build ./test/dockerdouble: " + e.err.Error() + "\n" + e.out
}

// useDockerDouble puts the stand-in docker first on this process's PATH (the in-process
// daemon's) and points DOCKER_CONFIG at a fresh directory where the double logs its calls;
// it returns the log's path. noEngine makes `docker version` fail like a client without an
// engine. (DOCKER_CONFIG is the one channel to the double: the daemon passes the docker
// client only PATH, HOME, the server's env and DOCKER_* settings.)
func useDockerDouble(t *testing.T, noEngine bool) string {
	t.Helper()
	dir := dockerDoubleDir(t)
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cfgDir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfgDir)
	if noEngine {
		if err := os.WriteFile(filepath.Join(cfgDir, "dockerdouble-no-engine"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(cfgDir, "dockerdouble.log")
}

// dockerCalls reads the double's log: the arguments of each docker invocation, in order.
func dockerCalls(t testing.TB, logFile string) [][]string {
	t.Helper()
	f, err := os.Open(logFile)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			Args []string `json:"args"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("double log line %q: %v", sc.Text(), err)
		}
		out = append(out, line.Args)
	}
	return out
}

// callText calls "server:tool" in-process and returns the text of the result.
func callText(t testing.TB, p *proxy, name string, args map[string]any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := p.D.Client.CallTool(ctx, name, args, nil, 0, nil)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := mcp.AsTextContent(c); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// getDoctor fetches the doctor's report.
func (p *proxy) getDoctor() doctor.Report {
	p.t.Helper()
	var rep doctor.Report
	if code, body := p.do("GET", "/api/v1/doctor", nil, &rep); code != 200 {
		p.t.Fatalf("GET /api/v1/doctor: %d %s", code, body)
	}
	return rep
}

// checksOf returns the report's checks with that name and status.
func checksOf(rep doctor.Report, name string, st doctor.Status) []doctor.Check {
	var out []doctor.Check
	for _, c := range rep.Checks {
		if c.Name == name && c.Status == st {
			out = append(out, c)
		}
	}
	return out
}

// hasCheck reports whether a check with that name and status mentions msg and suggests fix.
func hasCheck(rep doctor.Report, name string, st doctor.Status, msg, fix string) bool {
	for _, c := range checksOf(rep, name, st) {
		if strings.Contains(c.Message, msg) && strings.Contains(c.Fix, fix) {
			return true
		}
	}
	return false
}

func TestInfo(t *testing.T) {
	p := startProxy(t, servers())
	var info map[string]any
	if code, body := p.do("GET", "/api/v1/info", nil, &info); code != 200 {
		t.Fatalf("GET /api/v1/info: %d %s", code, body)
	}
	want := map[string]any{
		"go_version": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
		"pid": float64(os.Getpid()), "listen": p.D.Addr(), "data_dir": p.DataDir,
		"config_path": filepath.Join(p.DataDir, "mcp_config.json"), "socket_path": p.Socket,
	}
	for k, v := range want {
		if info[k] != v {
			t.Errorf("info.%s = %v, want %v", k, info[k], v)
		}
	}
	for _, k := range []string{"version", "commit", "started_at", "endpoints"} {
		if _, ok := info[k]; !ok {
			t.Errorf("info has no %q: %v", k, info)
		}
	}
	started, err := time.Parse(time.RFC3339Nano, info["started_at"].(string))
	if err != nil || time.Since(started) > time.Minute || time.Since(started) < 0 {
		t.Errorf("started_at = %v (%v)", info["started_at"], err)
	}
	ep, _ := info["endpoints"].(map[string]any)
	if ep["mcp"] != p.URL+"/mcp" || ep["api"] != p.URL+"/api/v1" || ep["events"] != p.URL+"/events" || ep["socket"] != "unix://"+p.Socket {
		t.Errorf("endpoints = %v", ep)
	}
	if code, _ := p.doWith("GET", "/api/v1/info", nil, nil, nil); code != 401 {
		t.Errorf("GET /api/v1/info without a key: %d, want 401", code)
	}
}

func TestDiagnostics(t *testing.T) {
	p := startProxy(t, servers(
		stdioFixture(t, "good"),
		map[string]any{"name": "broken", "command": "no-such-mcp-command-for-diagnostics", "quarantined": false},
	))
	p.waitState("good", 20*time.Second, actors.StateReady)
	p.waitState("broken", 20*time.Second, actors.StateError, actors.StateBackoff)
	var d struct {
		ServersInError []struct {
			Name       string     `json:"name"`
			State      string     `json:"state"`
			LastError  string     `json:"last_error"`
			RetryCount int        `json:"retry_count"`
			Since      *time.Time `json:"since"`
		} `json:"servers_in_error"`
		Goroutines int `json:"goroutines"`
		Memory     struct {
			HeapAlloc uint64 `json:"heap_alloc"`
			RSS       uint64 `json:"rss"`
			Sys       uint64 `json:"sys"`
		} `json:"memory"`
		Actors struct {
			Total     int `json:"total"`
			Upstreams int `json:"upstreams"`
		} `json:"actors"`
		Events map[string]any `json:"events"`
		Store  struct {
			DiskSize int64 `json:"disk_size"`
		} `json:"store"`
		Uptime *int64 `json:"uptime"`
	}
	code, body := p.do("GET", "/api/v1/diagnostics", nil, &d)
	if code != 200 {
		t.Fatalf("GET /api/v1/diagnostics: %d %s", code, body)
	}
	if len(d.ServersInError) != 1 || d.ServersInError[0].Name != "broken" {
		t.Fatalf("servers_in_error = %+v, want only broken", d.ServersInError)
	}
	e := d.ServersInError[0]
	if !strings.Contains(e.LastError, "not found") || e.RetryCount < 1 || e.Since == nil || time.Since(*e.Since) > time.Minute {
		t.Errorf("broken in diagnostics: %+v", e)
	}
	if d.Goroutines < 5 || d.Memory.HeapAlloc == 0 || d.Memory.Sys == 0 || d.Memory.RSS == 0 {
		t.Errorf("runtime figures look empty: %s", body)
	}
	// The registry, the hub and the two upstream actors at least.
	if d.Actors.Upstreams != 2 || d.Actors.Total < 4 {
		t.Errorf("actors = %+v", d.Actors)
	}
	for _, k := range []string{"subscribers", "dropped_events"} {
		if _, ok := d.Events[k]; !ok {
			t.Errorf("events has no %q: %v", k, d.Events)
		}
	}
	if d.Store.DiskSize <= 0 || d.Uptime == nil {
		t.Errorf("store/uptime: %s", body)
	}
}

func TestDoctorHealthyOnGoodSetup(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "good")))
	p.waitState("good", 20*time.Second, actors.StateReady)
	rep := p.getDoctor()
	if !rep.Healthy {
		t.Fatalf("doctor is unhealthy on a good setup: %+v", rep.Checks)
	}
	for _, c := range rep.Checks {
		if c.Status != doctor.OK {
			t.Errorf("check not ok on a good setup: %+v", c)
		}
	}
	for _, name := range []string{doctor.CheckConfig, doctor.CheckDataDir, doctor.CheckSocket, doctor.CheckReferences,
		doctor.CheckCommands, doctor.CheckServers, doctor.CheckDocker, doctor.CheckQuarantine} {
		if len(checksOf(rep, name, doctor.OK)) == 0 {
			t.Errorf("no ok %s check: %+v", name, rep.Checks)
		}
	}
}

func TestDoctorFindsProblems(t *testing.T) {
	p := startProxy(t, servers(
		withEnv(stdioFixture(t, "needs-secret"), map[string]string{"TOKEN": "${secret:DOCTOR_MISSING}"}),
		map[string]any{"name": "no-command", "command": "no-such-mcp-command-for-doctor", "quarantined": false},
		map[string]any{"name": "pending", "command": fixtureBin(t)}, // quarantined by default
	))
	p.waitState("needs-secret", 20*time.Second, actors.StateError, actors.StateBackoff)
	if err := os.Chmod(p.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	rep := p.getDoctor()
	if rep.Healthy {
		t.Fatalf("doctor is healthy with a missing secret, command and bad permission: %+v", rep.Checks)
	}
	for _, want := range []struct{ name, msg, fix string }{
		{doctor.CheckReferences, "${secret:DOCTOR_MISSING}", "mcpproxy secrets set DOCTOR_MISSING"},
		{doctor.CheckCommands, `"no-such-mcp-command-for-doctor" not found in PATH`, "install"},
		{doctor.CheckDataDir, "mode 0755", "chmod 700"},
		{doctor.CheckServers, "server needs-secret", "mcpproxy secrets set DOCTOR_MISSING"},
	} {
		if !hasCheck(rep, want.name, doctor.Fail, want.msg, want.fix) {
			t.Errorf("no failing %s check mentioning %q with fix %q: %+v", want.name, want.msg, want.fix, rep.Checks)
		}
	}
	if !hasCheck(rep, doctor.CheckQuarantine, doctor.Warn, "server pending", "unquarantine pending") {
		t.Errorf("pending quarantine not reported: %+v", rep.Checks)
	}

	// An invalid edit of the config file is reported while the daemon keeps running.
	if err := os.WriteFile(filepath.Join(p.DataDir, "mcp_config.json"), []byte(`{"mcpServers": [{"name": "x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "doctor to report the invalid config edit", func() bool {
		return hasCheck(p.getDoctor(), doctor.CheckConfig, doctor.Fail, "keeps running the previous config", "")
	})
}

// withEnv sets a config entry's env.
func withEnv(entry map[string]any, env map[string]string) map[string]any {
	entry["env"] = env
	return entry
}

func TestDockerStatusWithoutEngine(t *testing.T) {
	t.Run("this machine's docker", func(t *testing.T) {
		// Whatever this machine has (a client without an engine here), the answer is bounded
		// and says why Docker is unavailable.
		p := startProxy(t, servers())
		var st map[string]any
		start := time.Now()
		code, body := p.do("GET", "/api/v1/docker/status", nil, &st)
		if code != 200 {
			t.Fatalf("GET /api/v1/docker/status: %d %s", code, body)
		}
		if took := time.Since(start); took > 6*time.Second {
			t.Errorf("docker status took %s", took)
		}
		if st["available"] == true {
			if st["version"] == "" {
				t.Errorf("available without a version: %s", body)
			}
		} else if msg, _ := st["error"].(string); msg == "" {
			t.Errorf("unavailable without an error: %s", body)
		}
	})
	t.Run("client without engine", func(t *testing.T) {
		useDockerDouble(t, true)
		p := startProxy(t, map[string]any{
			"docker_isolation": map[string]any{"enabled": true, "default_image": "example/base:1"},
			"mcpServers": []any{
				map[string]any{"name": "boxed", "command": "srv", "quarantined": false},
				map[string]any{"name": "remote", "url": "http://127.0.0.1:9/mcp", "quarantined": false, "enabled": false},
			},
		})
		var st struct {
			Available bool   `json:"available"`
			Version   string `json:"version"`
			Error     string `json:"error"`
			Isolation struct {
				Enabled      bool   `json:"enabled"`
				DefaultImage string `json:"default_image"`
			} `json:"isolation"`
			IsolatedServers []string `json:"isolated_servers"`
		}
		if code, body := p.do("GET", "/api/v1/docker/status", nil, &st); code != 200 {
			t.Fatalf("GET /api/v1/docker/status: %d %s", code, body)
		}
		if st.Available || !strings.Contains(st.Error, "Cannot connect to the Docker daemon") || st.Version != "" {
			t.Errorf("status = %+v, want unavailable with the client's error", st)
		}
		if !st.Isolation.Enabled || st.Isolation.DefaultImage != "example/base:1" || !slices.Equal(st.IsolatedServers, []string{"boxed"}) {
			t.Errorf("isolation = %+v, isolated = %v", st.Isolation, st.IsolatedServers)
		}
		if s := p.server("boxed"); !s.Isolated {
			t.Errorf("boxed is not shown as isolated: %+v", s)
		}
		// The doctor names Docker as the problem of the isolated server.
		if rep := p.getDoctor(); !hasCheck(rep, doctor.CheckDocker, doctor.Fail, "Cannot connect", "start the Docker engine") {
			t.Errorf("doctor does not report Docker: %+v", rep.Checks)
		}
	})
}

// TestDockerIsolationThroughDouble runs an isolated stdio server through the stand-in docker:
// the daemon removes a stale container, runs `docker run -i --rm --init --name
// mcpproxy-<server> --network none -e KEY ... IMAGE COMMAND ARGS`, passes env values only
// through the client's environment, and the server works.
func TestDockerIsolationThroughDouble(t *testing.T) {
	logFile := useDockerDouble(t, false)
	t.Setenv("MCPPROXY_TEST_DAEMON_ONLY", "must-not-reach-the-container")
	fx := fixtureBin(t)
	p := startProxy(t, servers(map[string]any{
		"name": "iso", "command": fx, "args": []string{"--name", "iso"}, "quarantined": false,
		"env":       map[string]string{"TOKEN": "${secret:ISO_TOKEN}", "PLAIN": "plain-value"},
		"isolation": map[string]any{"enabled": true, "image": "example/image:1"},
	}))
	// The secret is missing: the server fails before docker is ever asked to run it.
	s := p.waitState("iso", 20*time.Second, actors.StateError, actors.StateBackoff)
	if !strings.Contains(s.LastError, `secret "ISO_TOKEN" not found`) || !s.Isolated {
		t.Fatalf("iso before its secret: %+v", s)
	}
	const secretValue = "iso-secret-value-5b1f"
	if code, body := p.do("PUT", "/api/v1/secrets/ISO_TOKEN", map[string]string{"value": secretValue}, nil); code != 201 {
		t.Fatalf("PUT secret: %d %s", code, body)
	}
	p.waitState("iso", 20*time.Second, actors.StateReady)

	calls := dockerCalls(t, logFile)
	run := slices.IndexFunc(calls, func(a []string) bool { return len(a) > 0 && a[0] == "run" })
	if run < 0 {
		t.Fatalf("docker was never asked to run the server: %q", calls)
	}
	if !slices.ContainsFunc(calls[:run], func(a []string) bool { return slices.Equal(a, []string{"rm", "-f", "mcpproxy-iso"}) }) {
		t.Errorf("no `docker rm -f mcpproxy-iso` before the run: %q", calls)
	}
	want := []string{"run", "-i", "--rm", "--init", "--name", "mcpproxy-iso", "--label", "mcpproxy.server=iso",
		"--network", "none", "-e", "PLAIN", "-e", "TOKEN", "example/image:1", fx, "--name", "iso"}
	if !slices.Equal(calls[run], want) {
		t.Errorf("docker run args =\n %q\nwant\n %q", calls[run], want)
	}
	for _, c := range calls {
		if strings.Contains(strings.Join(c, " "), secretValue) {
			t.Errorf("the secret value is on a docker command line: %q", c)
		}
	}

	// The "container" sees PATH and exactly the variables its config passes.
	env := callText(t, p, "iso:env", map[string]any{})
	vars := map[string]string{}
	for _, line := range strings.Split(env, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			vars[k] = v
		}
	}
	if vars["TOKEN"] != secretValue || vars["PLAIN"] != "plain-value" {
		t.Errorf("container env lacks the configured variables: %q", env)
	}
	for k := range vars {
		if k != "PATH" && k != "TOKEN" && k != "PLAIN" {
			t.Errorf("container env has %s, which its config does not pass: %q", k, env)
		}
	}

	var st struct {
		Available       bool     `json:"available"`
		Version         string   `json:"version"`
		IsolatedServers []string `json:"isolated_servers"`
	}
	if code, body := p.do("GET", "/api/v1/docker/status", nil, &st); code != 200 || !st.Available ||
		st.Version != "0.0.0-dockerdouble" || !slices.Equal(st.IsolatedServers, []string{"iso"}) {
		t.Errorf("docker status: %d %s", code, body)
	}

	// Stopping the server ends the "container" process.
	pid := serverPID(t, p, "iso")
	if code, body := p.do("POST", "/api/v1/servers/iso/disable", nil, nil); code != 200 {
		t.Fatalf("disable: %d %s", code, body)
	}
	p.waitState("iso", 20*time.Second, actors.StateDisabled)
	waitFor(t, 10*time.Second, "the isolated process to exit", func() bool { return !processAlive(pid) })
}

// serverPID is the stdio child's pid as the registry knows it (not part of the API object).
func serverPID(t testing.TB, p *proxy, name string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := p.D.Client.Server(ctx, name)
	if err != nil || s.PID <= 0 {
		t.Fatalf("pid of %s: %d %v", name, s.PID, err)
	}
	return s.PID
}
