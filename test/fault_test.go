package test

// The fault suite: the daemon killed with SIGKILL (with upstreams running, during a config
// apply, during a flag write), an upstream stopped with SIGSTOP, an upstream flooding its
// stdout, a load of /events subscribers, REST and /mcp calls with restart_all on top, and
// bad input on every route. `make test` runs the short form; `make soak` sets
// MCPPROXY_SOAK=1 for the long one (more rounds, 60 s of load, 500 subscribers).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/config"
)

// soakMode reports whether the long form of the fault suite runs (make soak).
func soakMode() bool { return os.Getenv("MCPPROXY_SOAK") != "" }

// bySoak picks the short-form or the long-form value.
func bySoak[T any](short, long T) T {
	if soakMode() {
		return long
	}
	return short
}

// vmRSSKB reads a process's resident set (children excluded) in KiB.
func vmRSSKB(t testing.TB, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the daemon's memory: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// tempConfigFiles lists the temporary files atomic config saves leave in dir.
func tempConfigFiles(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "."+config.FileName+".tmp-*"))
	return m
}

// checkConfigFile asserts that the config file in dir parses and validates, and returns
// its server names and the quarantine flag of each.
func checkConfigFile(t testing.TB, dir string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, config.FileName))
	if err != nil {
		t.Fatalf("config file: %v", err)
	}
	cfg, errs := config.Parse(data)
	if len(errs) > 0 {
		t.Fatalf("config file does not parse after kill -9 (torn write?): %v\n%s", errs, snippet(data))
	}
	cfg.Normalize()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config file does not validate after kill -9: %v\n%s", errs, snippet(data))
	}
	if cfg.APIKey == "" {
		t.Fatalf("config file lost its api_key")
	}
	out := map[string]bool{}
	for _, s := range cfg.Servers {
		out[s.Name] = s.IsQuarantined()
	}
	return out
}

// TestFaultKill9KeepsState kills the daemon binary with SIGKILL while 20 stdio upstreams
// run: none of them may survive it, and a new daemon on the same data dir has the flags,
// the secret, the closed MCP session and the event log of the old one, with event ids that
// keep increasing.
func TestFaultKill9KeepsState(t *testing.T) {
	mk := marker(t)
	dir := t.TempDir()
	var entries []map[string]any
	for i := range 19 {
		entries = append(entries, stdioFixture(t, fmt.Sprintf("u%02d", i), "--name", mk))
	}
	sec := stdioFixture(t, "sec", "--name", mk)
	sec["env"] = map[string]string{"FAULT_TOKEN": "${secret:fault_token}"}
	entries = append(entries, sec)
	p := startProxyProcess(t, dir, servers(entries...))

	const secret = "kill9-secret-value-0123456789"
	if code, body := p.do("PUT", "/api/v1/secrets/fault_token", map[string]string{"value": secret}, nil); code != 200 && code != 201 {
		t.Fatalf("PUT secret: %d %s", code, body)
	}
	for _, e := range entries {
		p.waitState(e["name"].(string), 60*time.Second, actors.StateReady)
	}
	waitFor(t, 20*time.Second, "20 upstream processes", func() bool { return len(processesWithArg(mk)) == 20 })

	// Flags: both answers come after the file was written.
	if code, body := p.do("POST", "/api/v1/servers/u01/disable", nil, nil); code != 200 {
		t.Fatalf("disable: %d %s", code, body)
	}
	if code, body := p.do("POST", "/api/v1/servers/u02/quarantine", map[string]bool{"quarantined": true}, nil); code != 200 {
		t.Fatalf("quarantine: %d %s", code, body)
	}
	p.waitState("u01", 20*time.Second, actors.StateDisabled)

	// A session with three calls that the client closed (so the tracker wrote it).
	c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "fault-kill9")
	for range 3 {
		if res := viaProxy(t, c, "u03:echo", map[string]any{"text": "x"}); res.IsError {
			t.Fatalf("u03:echo: %s", textOf(res))
		}
	}
	sid := c.GetSessionId()
	// mcp-go's client does not always send DELETE on Close; an agent that ends its session
	// does, and the tracker writes the closed session at once.
	if code, body := p.doWith("DELETE", "/mcp", nil, nil, map[string]string{"X-API-Key": p.Key, "Mcp-Session-Id": sid}); code != 200 {
		t.Fatalf("DELETE /mcp session: %d %s", code, body)
	}
	_ = c.Close()
	waitFor(t, 10*time.Second, "the session to be closed", func() bool {
		s, code := p.session(sid)
		return code == 200 && s.Status == store.SessionClosed
	})

	// The newest event id before the kill.
	s := openSSE(t, p, "/events", keyHeader(p))
	toggleQuarantine(p, "u04", 2)
	evs := s.waitEvents(10*time.Second, "two quarantine events of u04", func(evs []sseEvent) bool {
		n := 0
		for _, e := range evs {
			if ch, ok := decodeChanged(t, e); ok && ch.Server.Name == "u04" && (ch.Reason == "quarantined" || ch.Reason == "unquarantined") {
				n++
			}
		}
		return n >= 2
	})
	var lastID uint64
	for _, e := range evs {
		lastID = max(lastID, eventID(t, e))
	}

	if err := p.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.Cmd.Wait()
	s.Close()
	waitFor(t, 10*time.Second, "no upstream to survive the daemon", func() bool { return len(processesWithArg(mk)) == 0 })
	checkConfigFile(t, dir)

	p2 := startProxyProcess(t, dir, nil)
	if got := p2.server("u01"); got.Enabled || got.State != actors.StateDisabled {
		t.Errorf("after kill -9, u01 = enabled %v state %s, want disabled", got.Enabled, got.State)
	}
	if got := p2.server("u02"); !got.Quarantined {
		t.Errorf("after kill -9, u02 is not quarantined")
	}
	if code, body := p2.do("GET", "/api/v1/secrets/fault_token", nil, nil); code != 200 {
		t.Errorf("after kill -9, the secret is gone: %d %s", code, body)
	}
	if sess, code := p2.session(sid); code != 200 || sess.ClientName != "fault-kill9" || sess.ToolCalls != 3 || sess.Status != store.SessionClosed {
		t.Errorf("after kill -9, session %s = %d %+v, want closed, fault-kill9, 3 calls", sid, code, sess)
	}
	// The event log survived: a client that saw lastID-1 gets lastID replayed, and new
	// events get larger ids.
	s2 := openSSE(t, p2, "/events", map[string]string{"X-API-Key": p2.Key, "Last-Event-ID": strconv.FormatUint(lastID-1, 10)})
	if first := s2.waitCount(1, 10*time.Second)[0]; eventID(t, first) != lastID {
		t.Errorf("replay after kill -9 starts at id %s, want %d", first.ID, lastID)
	}
	toggleQuarantine(p2, "u04", 1)
	s2.waitEvents(10*time.Second, "a new event with a larger id", func(evs []sseEvent) bool {
		for _, e := range evs {
			if ch, ok := decodeChanged(t, e); ok && ch.Server.Name == "u04" && ch.Reason == "quarantined" {
				return eventID(t, e) > lastID
			}
		}
		return false
	})
	checkWire(t, s2.Events())

	p2.waitState("sec", 60*time.Second, actors.StateReady)
	c2 := dialMCP(t, p2.URL+"/mcp", p2.mcpKey(), "fault-after")
	if env := textOf(viaProxy(t, c2, "sec:env", nil)); !strings.Contains(env, "FAULT_TOKEN="+secret) {
		t.Errorf("after kill -9, sec does not get the secret:\n%s", env)
	}
	for _, e := range entries {
		if n := e["name"].(string); n != "u01" {
			p2.waitState(n, 60*time.Second, actors.StateReady)
		}
	}
	waitFor(t, 20*time.Second, "19 upstream processes (u01 disabled)", func() bool { return len(processesWithArg(mk)) == 19 })
}

// storeChildEnv names the data dir of TestFaultStoreSurvivesKill9's child process.
const storeChildEnv = "MCPPROXY_FAULT_STORE_CHILD"

// TestFaultStoreSurvivesKill9 checks the store's own promise (actors/store: events and
// sessions "survive a crash of the process") without the rest of the daemon: a child
// process (this test binary, re-executed) opens the store, appends events and writes a
// session as the hub and the session tracker do, says so, and is killed with SIGKILL; the
// store opened again must hold them.
func TestFaultStoreSurvivesKill9(t *testing.T) {
	if dir := os.Getenv(storeChildEnv); dir != "" {
		storeChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := execCommand(os.Args[0], "-test.run=^TestFaultStoreSurvivesKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), storeChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	written := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "written") {
				written <- sc.Text()
			}
		}
		close(written)
	}()
	select {
	case line, ok := <-written:
		if !ok {
			_ = cmd.Wait()
			t.Fatal("the child ended without writing")
		}
		t.Log(line)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the child did not write in 30 s")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if last, err := st.LastEventID(); err != nil || last != 5 {
		t.Errorf("after kill -9 the last event id is %d (%v), want 5: events written with pebble.NoSync sit in pebble's WAL buffer until a 32 KiB block fills or a synced write comes, so a crash loses them and the next daemon reuses their ids", last, err)
	}
	if evs, err := st.EventsAfter(0, 100); err != nil || len(evs) != 5 {
		t.Errorf("after kill -9 the event log holds %d events (%v), want 5", len(evs), err)
	}
	if sess, err := st.GetSession("fault-session"); err != nil || sess.ToolCalls != 3 {
		t.Errorf("after kill -9 the session is %+v (%v), want it with 3 tool calls", sess, err)
	}
}

// storeChild is the child of TestFaultStoreSurvivesKill9: write, report, wait to be killed.
func storeChild(dir string) {
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	for id := uint64(1); id <= 5; id++ {
		if err := st.AppendEvents([]store.Event{{ID: id, Name: "servers.changed", Data: []byte(`{"reason":"state"}`), Time: time.Now()}}); err != nil {
			fmt.Println("append:", err)
			os.Exit(1)
		}
	}
	now := time.Now()
	if err := st.PutSession(store.Session{ID: "fault-session", ClientName: "fault", Status: store.SessionClosed, StartedAt: now, LastActivity: now, ToolCalls: 3}); err != nil {
		fmt.Println("session:", err)
		os.Exit(1)
	}
	fmt.Println("written 5 events and a session")
	select {} // until SIGKILL
}

// faultWriter sends requests to a daemon that is about to die: errors are expected and
// ignored, and nothing calls t.Fatal from its goroutine.
type faultWriter struct {
	url, key string
	client   *http.Client
}

// post sends one request and returns its status, 0 when there was no answer.
func (w faultWriter) post(path string, body []byte) int {
	req, err := http.NewRequest("POST", w.url+path, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("X-API-Key", w.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestFaultKill9DuringWrites kills the daemon with SIGKILL at a random moment while a
// goroutine applies configs (or flips a flag) as fast as it can, several times over: the
// config file must always be one of the written versions, whole (it parses and validates,
// the key is there), and the daemon must start on it again.
func TestFaultKill9DuringWrites(t *testing.T) {
	rounds := bySoak(3, 25)
	for _, mode := range []string{"config apply", "flag write"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
			d0, d1 := disabledServer(t, "d0"), disabledServer(t, "d1")
			cfg := any(servers(d0, d1))
			var key string
			for round := range rounds {
				p := startProxyProcess(t, dir, cfg)
				cfg = nil
				if key == "" {
					key = p.Key
				} else if p.Key != key {
					t.Fatalf("round %d: the API key changed", round)
				}
				base, _, _ := p.getConfig()
				w := faultWriter{url: p.URL, key: p.Key, client: &http.Client{Timeout: 5 * time.Second}}
				var writes atomic.Int64
				acked := atomic.Int64{} // the last write answered 200, -1 for none
				acked.Store(-1)
				stop, done := make(chan struct{}), make(chan struct{})
				go func() {
					defer close(done)
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						if mode == "config apply" {
							entries := []map[string]any{d0, d1}
							if i%2 == 0 {
								x := maps.Clone(d1)
								x["name"] = fmt.Sprintf("x%d", i)
								entries = append(entries, x)
							}
							body, _ := json.Marshal(withServers(base, entries...))
							if w.post("/api/v1/config/apply", body) == 200 {
								acked.Store(int64(i))
							}
						} else if w.post("/api/v1/servers/d0/quarantine", []byte(fmt.Sprintf(`{"quarantined":%v}`, i%2 == 0))) == 200 {
							acked.Store(int64(i))
						}
						writes.Add(1)
					}
				}()
				waitFor(t, 10*time.Second, "the first write", func() bool { return writes.Load() > 0 })
				// The kill lands at a random point of the write loop; a sleep is the way to
				// pick a moment, not to wait for something.
				time.Sleep(time.Duration(rng.IntN(60_000)) * time.Microsecond)
				if err := p.Cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				_ = p.Cmd.Wait()
				close(stop)
				<-done
				names := checkConfigFile(t, dir)
				if _, ok := names["d0"]; !ok {
					t.Fatalf("round %d: d0 is missing from the config file: %v", round, names)
				}
				for n := range names {
					if n != "d0" && n != "d1" && !strings.HasPrefix(n, "x") {
						t.Fatalf("round %d: unexpected server %q in the config file", round, n)
					}
				}
				if mode == "config apply" {
					// The file holds the last acknowledged apply or the one in flight after
					// it, never an older one: an acknowledged apply is on disk.
					if a := acked.Load(); a >= 0 && !appliedVersion(names, a) && !appliedVersion(names, a+1) {
						t.Fatalf("round %d: the file holds %v, neither apply %d (acknowledged) nor %d", round, names, a, a+1)
					}
				}
				t.Logf("round %d: killed after %d writes; file has %d servers", round, writes.Load(), len(names))
			}
			// The daemon starts on what the last kill left and serves what the file says.
			p := startProxyProcess(t, dir, nil)
			names := checkConfigFile(t, dir)
			var list struct {
				Servers []actors.Server `json:"servers"`
			}
			if code, body := p.do("GET", "/api/v1/servers", nil, &list); code != 200 || len(list.Servers) != len(names) {
				t.Fatalf("servers after the last kill: %d %s, want %d", code, body, len(names))
			}
			for _, s := range list.Servers {
				if q, ok := names[s.Name]; !ok || q != s.Quarantined {
					t.Errorf("server %s: quarantined %v, file says %v (present %v)", s.Name, s.Quarantined, q, ok)
				}
			}
			if tmp := tempConfigFiles(dir); len(tmp) > 0 {
				// Not a torn config, but litter: a save interrupted between CreateTemp and
				// Rename leaves its temporary file for good.
				t.Logf("temporary config files left by interrupted saves: %d", len(tmp))
			}
		})
	}
}

// appliedVersion reports whether names is what apply number i of the write loop wrote:
// d0, d1, and x<i> when i is even.
func appliedVersion(names map[string]bool, i int64) bool {
	want := 2
	if i%2 == 0 {
		want = 3
		if _, ok := names[fmt.Sprintf("x%d", i)]; !ok {
			return false
		}
	}
	return len(names) == want
}

// TestFaultStoppedUpstream stops one stdio upstream with SIGSTOP: calls to it fail with a
// timeout after call_tool_timeout, while calls to the other upstreams and the REST API,
// made at the same time, answer well within that timeout. After SIGCONT it answers again.
func TestFaultStoppedUpstream(t *testing.T) {
	mk := marker(t)
	cfg := servers(stdioFixture(t, "a", "--name", mk+"-a"), stdioFixture(t, "b", "--name", mk+"-b"), stdioFixture(t, "c", "--name", mk+"-c"))
	const timeout = 3 * time.Second
	cfg["call_tool_timeout"] = timeout.String()
	p := startProxy(t, cfg)
	for _, n := range []string{"a", "b", "c"} {
		p.waitState(n, 30*time.Second, actors.StateReady)
	}
	mc := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "fault-sigstop")
	pids := processesWithArg(mk + "-a")
	if len(pids) != 1 {
		t.Fatalf("want one process of a, got %v", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pids[0], syscall.SIGCONT) })
	waitFor(t, 5*time.Second, "a to be stopped", func() bool { return processState(pids[0]) == 'T' })

	type outcome struct {
		took time.Duration
		res  *mcp.CallToolResult
		err  error
	}
	// Three calls in-process and one through /mcp, as an agent makes it.
	stuck := make(chan outcome, 4)
	start := time.Now()
	for i := range cap(stuck) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			t0 := time.Now()
			var res *mcp.CallToolResult
			var err error
			if i == 0 {
				req := mcp.CallToolRequest{}
				req.Params.Name = "call_tool"
				req.Params.Arguments = map[string]any{"name": "a:echo", "arguments": map[string]any{"text": "x"}}
				res, err = mc.CallTool(ctx, req)
			} else {
				res, err = p.D.Client.CallTool(ctx, "a:echo", map[string]any{"text": "x"}, nil, 0, nil)
			}
			stuck <- outcome{time.Since(t0), res, err}
		}()
	}
	// While the calls to a hang, everything else answers. The bound is half the timeout:
	// anything queued behind the stopped upstream would take the whole timeout.
	ops := []struct {
		name string
		do   func() error
	}{
		{"b:echo via /mcp", func() error {
			if res := viaProxy(t, mc, "b:echo", map[string]any{"text": "y"}); res.IsError || textOf(res) != "y" {
				return fmt.Errorf("b:echo = %q", textOf(res))
			}
			return nil
		}},
		{"c:echo in-process", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := p.D.Client.CallTool(ctx, "c:echo", map[string]any{"text": "z"}, nil, 0, nil)
			if err == nil && res.IsError {
				err = fmt.Errorf("c:echo: %s", resultText(res))
			}
			return err
		}},
		{"GET /api/v1/servers", restOK(p, "/api/v1/servers")},
		{"GET /api/v1/servers/a", restOK(p, "/api/v1/servers/a")},
		{"GET /api/v1/status", restOK(p, "/api/v1/status")},
		{"GET /api/v1/tools?q=echo", restOK(p, "/api/v1/tools?q=echo")},
	}
	worst := map[string]time.Duration{}
	for time.Since(start) < timeout-500*time.Millisecond {
		for _, op := range ops {
			t0 := time.Now()
			if err := op.do(); err != nil {
				t.Fatalf("%s while a is stopped: %v", op.name, err)
			}
			worst[op.name] = max(worst[op.name], time.Since(t0))
		}
	}
	t.Logf("slowest answers while a was stopped: %v", worst)
	for name, d := range worst {
		if d > timeout/2 {
			t.Errorf("%s took %s while a was stopped (bound %s)", name, d, timeout/2)
		}
	}
	for range cap(stuck) {
		var o outcome
		select {
		case o = <-stuck:
		case <-time.After(timeout + 20*time.Second):
			t.Fatalf("a call to the stopped upstream did not end within %s", timeout+20*time.Second)
		}
		if st := processState(pids[0]); st != 'T' {
			t.Errorf("a's process %d is in state %q, no longer stopped", pids[0], st)
		}
		// In-process the timeout is an error with its code; through /mcp it is a tool
		// error that says so.
		timedOut := o.err != nil && actors.ErrorCode(o.err) == actors.CodeTimeout ||
			o.err == nil && o.res.IsError && strings.Contains(resultText(o.res), "timed out")
		if !timedOut {
			t.Errorf("call to the stopped upstream: %v %+v, want a timeout", o.err, o.res)
		}
		t.Logf("call to the stopped upstream ended after %s: %v", o.took.Round(time.Millisecond), o.err)
		if o.took < timeout-250*time.Millisecond || o.took > timeout+5*time.Second {
			t.Errorf("call to the stopped upstream ended after %s, want about %s", o.took, timeout)
		}
	}
	if err := syscall.Kill(pids[0], syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	waitFor(t, 30*time.Second, "a to answer after SIGCONT", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := p.D.Client.CallTool(ctx, "a:echo", map[string]any{"text": "back"}, nil, 0, nil)
		return err == nil && !res.IsError && resultText(res) == "back"
	})
	t.Logf("a answered again %s after SIGCONT", time.Since(resumed).Round(time.Millisecond))
}

// processState is the state letter of /proc/PID/stat (R, S, T for stopped, Z...), 0 when
// the process is gone.
func processState(pid int) byte {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	if i := bytes.LastIndexByte(data, ')'); i > 0 && i+2 < len(data) {
		return data[i+2]
	}
	return 0
}

// restOK is an op that GETs path and wants 200.
func restOK(p *proxy, path string) func() error {
	return func() error {
		if code, body := p.do("GET", path, nil, nil); code != 200 {
			return fmt.Errorf("%d %s", code, snippet(body))
		}
		return nil
	}
}

// TestFaultFloodingUpstream runs an upstream that writes endless garbage and 64 MiB lines
// to its stdout: the daemon's resident memory stays bounded while it retries, the server
// shows error/backoff with a reason, and a well-behaved upstream beside it stays ready.
func TestFaultFloodingUpstream(t *testing.T) {
	mk := marker(t)
	flood := map[string]any{"name": "flood", "command": fixtureBin(t), "args": []string{"--name", mk, "--flood"}, "quarantined": false}
	p := startProxyProcess(t, t.TempDir(), servers(flood, stdioFixture(t, "ok", "--name", mk)))
	p.waitState("ok", 30*time.Second, actors.StateReady)
	pid := p.Cmd.Process.Pid
	// The stdio reader caps a line at 16 MiB (upstream.Options.MaxLineBytes); a copy or two of
	// that plus the runtime is the budget, far below the 64 MiB line, let alone endless ones.
	const limitKB = 160 << 10
	retries := bySoak(3, 8)
	var peak int64
	states := map[actors.State]int{}
	var last actors.Server
	deadline := time.Now().Add(bySoak(90*time.Second, 5*time.Minute))
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		peak = max(peak, vmRSSKB(t, pid))
		if i%10 == 0 {
			last = p.server("flood")
			states[last.State]++
			if last.RetryCount >= retries {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("flood retried %d times in the time allowed, want %d; states %v", last.RetryCount, retries, states)
		}
		<-tick.C
	}
	t.Logf("flood: %d retries, states seen %v, last_error %q, daemon peak RSS %d MiB", last.RetryCount, states, last.LastError, peak>>10)
	if peak > limitKB {
		t.Errorf("daemon RSS peaked at %d MiB while an upstream flooded it (limit %d MiB)", peak>>10, limitKB>>10)
	}
	if states[actors.StateError]+states[actors.StateBackoff] == 0 || last.LastError == "" {
		t.Errorf("flood never showed error/backoff with a reason: states %v, last_error %q", states, last.LastError)
	}
	if s := p.server("ok"); s.State != actors.StateReady {
		t.Errorf("the well-behaved upstream is %s", s.State)
	}
	if code, _ := p.do("GET", "/api/v1/status", nil, nil); code != 200 {
		t.Errorf("status while flooded: %d", code)
	}
}

// countingSub is a light /events subscriber for load: it counts events and checks that
// ids increase, keeping nothing else, so thousands of events cost the test no memory.
type countingSub struct {
	conn   net.Conn
	events atomic.Int64
	lastID atomic.Uint64
	mu     sync.Mutex
	err    error // ids out of order or the stream ended
	done   chan struct{}
}

func openCountingSub(t testing.TB, p *proxy) *countingSub {
	t.Helper()
	u, _ := url.Parse(p.URL)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatalf("dial /events: %v", err)
	}
	req := writeSSERequest(t, conn, "GET", u.Host, "/events", keyHeader(p))
	br := bufio.NewReaderSize(conn, 16<<10)
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(br, req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /events: %v %v", err, resp)
	}
	_ = conn.SetReadDeadline(time.Time{})
	s := &countingSub{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		r := bufio.NewReaderSize(resp.Body, 16<<10)
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				s.setErr(fmt.Errorf("stream ended: %w", err))
				return
			}
			if v, ok := bytes.CutPrefix(line, []byte("id:")); ok {
				id, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
				if err != nil || id <= s.lastID.Load() {
					s.setErr(fmt.Errorf("event id %q after %d", bytes.TrimSpace(v), s.lastID.Load()))
				}
				s.lastID.Store(id)
				s.events.Add(1)
			}
		}
	}()
	return s
}

func (s *countingSub) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

func (s *countingSub) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *countingSub) Close() {
	_ = s.conn.Close()
	<-s.done
}

// loadStats counts what the load saw.
type loadStats struct {
	mu         sync.Mutex
	statuses   map[string]map[int]int // op -> status -> count
	failures   []string
	toolErrors int
	calls      int
	slowest    time.Duration
}

func (l *loadStats) status(op string, code int, took time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.statuses[op] == nil {
		l.statuses[op] = map[int]int{}
	}
	l.statuses[op][code]++
	l.slowest = max(l.slowest, took)
}

func (l *loadStats) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) < 20 {
		l.failures = append(l.failures, fmt.Sprintf(format, args...))
	}
}

// TestFaultLoad puts /events subscribers, a steady REST and /mcp call load, quarantine
// flips and a restart_all every two seconds on an in-process daemon under -race. Nothing
// may deadlock (every request ends within its client timeout), no REST request may fail
// with a 5xx, no /mcp call may fail at the transport, every subscriber stays subscribed
// and sees increasing ids, and afterwards every upstream is ready again and goroutines and
// heap return to where they were.
func TestFaultLoad(t *testing.T) {
	nSubs := bySoak(50, 500)
	dur := bySoak(10*time.Second, 60*time.Second)
	var entries []map[string]any
	for i := range 5 {
		entries = append(entries, stdioFixture(t, fmt.Sprintf("s%d", i)))
	}
	p := startProxy(t, servers(entries...))
	for _, e := range entries {
		p.waitState(e["name"].(string), 30*time.Second, actors.StateReady)
	}
	p.do("GET", "/api/v1/status", nil, nil)
	p.client.CloseIdleConnections()
	baseG, baseHeap := settledGoroutines(), heapAlloc()

	subs := make([]*countingSub, nSubs)
	for i := range subs {
		subs[i] = openCountingSub(t, p)
	}
	stats := &loadStats{statuses: map[string]map[int]int{}}
	hc := &http.Client{Timeout: 20 * time.Second}
	get := func(op, path string) {
		req, _ := http.NewRequest("GET", p.URL+path, nil)
		req.Header.Set("X-API-Key", p.Key)
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			stats.fail("%s: %v (after %s: deadlock?)", op, err, time.Since(t0))
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		stats.status(op, resp.StatusCode, time.Since(t0))
		if resp.StatusCode >= 500 {
			stats.fail("%s: %d", op, resp.StatusCode)
		}
	}
	post := func(op, path, body string) {
		req, _ := http.NewRequest("POST", p.URL+path, strings.NewReader(body))
		req.Header.Set("X-API-Key", p.Key)
		req.Header.Set("Content-Type", "application/json")
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			stats.fail("%s: %v (after %s: deadlock?)", op, err, time.Since(t0))
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		stats.status(op, resp.StatusCode, time.Since(t0))
		if resp.StatusCode != 200 {
			stats.fail("%s: %d", op, resp.StatusCode)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	for _, path := range []string{"/api/v1/servers", "/api/v1/status", "/api/v1/tools?q=echo", "/api/v1/servers/s1", "/api/v1/sessions"} {
		wg.Go(func() {
			for ctx.Err() == nil {
				get("GET "+path, path)
			}
		})
	}
	wg.Go(func() {
		for q := true; ctx.Err() == nil; q = !q {
			post("quarantine", "/api/v1/servers/s4/quarantine", fmt.Sprintf(`{"quarantined":%v}`, q))
			sleepCtx(ctx, 100*time.Millisecond)
		}
	})
	wg.Go(func() {
		for sleepCtx(ctx, 2*time.Second) {
			post("restart_all", "/api/v1/servers/restart_all", "")
		}
	})
	for i := range 4 {
		c, err := newMCP(p.URL+"/mcp", p.mcpKey(), fmt.Sprintf("load-%d", i))
		if err != nil {
			t.Fatalf("/mcp client: %v", err)
		}
		wg.Go(func() {
			defer c.Close()
			for n := 0; ctx.Err() == nil; n++ {
				req := mcp.CallToolRequest{}
				req.Params.Name = "call_tool"
				req.Params.Arguments = map[string]any{"name": fmt.Sprintf("s%d:echo", n%4), "arguments": map[string]any{"text": "load"}}
				cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
				t0 := time.Now()
				res, err := c.CallTool(cctx, req)
				ccancel()
				stats.mu.Lock()
				stats.calls++
				stats.slowest = max(stats.slowest, time.Since(t0))
				stats.mu.Unlock()
				switch {
				case err != nil:
					stats.fail("/mcp call_tool: %v (after %s)", err, time.Since(t0))
				case res.IsError:
					// An upstream being restarted refuses calls with a tool error, as documented.
					stats.mu.Lock()
					stats.toolErrors++
					stats.mu.Unlock()
				}
			}
		})
	}
	wg.Wait()

	for _, s := range subs {
		if err := s.Err(); err != nil {
			t.Errorf("subscriber: %v", err)
			break
		}
	}
	var minEvents int64 = -1
	for _, s := range subs {
		if n := s.events.Load(); minEvents < 0 || n < minEvents {
			minEvents = n
		}
	}
	hub := p.hubStats()
	t.Logf("load for %s: %d subscribers (fewest events seen %d, hub published %d, dropped %d), %d /mcp calls (%d tool errors during restarts), slowest %s, statuses %v",
		dur, nSubs, minEvents, hub.Published, hub.Dropped, stats.calls, stats.toolErrors, stats.slowest, stats.statuses)
	for _, f := range stats.failures {
		t.Error(f)
	}
	if minEvents <= 0 {
		t.Errorf("a subscriber got no event in %s of flips and restarts", dur)
	}
	if hub.Dropped > 0 {
		t.Errorf("the hub dropped %d subscribers that were reading", hub.Dropped)
	}
	for _, s := range subs {
		s.Close()
	}
	for _, e := range entries {
		p.waitState(e["name"].(string), 60*time.Second, actors.StateReady)
	}
	hc.CloseIdleConnections()
	p.client.CloseIdleConnections()
	var g int
	deadline := time.Now().Add(30 * time.Second)
	for g = settledGoroutines(); g > baseG+10 && time.Now().Before(deadline); g = settledGoroutines() {
		time.Sleep(100 * time.Millisecond) // polling a count that has no event to wait on
	}
	if g > baseG+10 {
		var buf bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
		t.Errorf("goroutines: %d before the load, %d after it\n%s", baseG, g, snippet(buf.Bytes()))
	}
	if h := heapAlloc(); h > baseHeap+48<<20 {
		t.Errorf("heap: %d MiB before the load, %d MiB after it", baseHeap>>20, h>>20)
	} else {
		t.Logf("goroutines %d -> %d, heap %d -> %d MiB", baseG, g, baseHeap>>20, h>>20)
	}
}

// sleepCtx waits d or until ctx ends, and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}

// settledGoroutines counts goroutines after letting finished ones exit.
func settledGoroutines() int {
	runtime.GC()
	runtime.Gosched()
	return runtime.NumGoroutine()
}

// heapAlloc is the live heap after a full collection.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestFaultBadInput sends malformed, mistyped, huge and odd input to every route the
// daemon registers (taken from the router, so new routes are covered without editing this
// test), odd names in every path parameter, and bad Last-Event-ID values: every answer is
// below 500, and the daemon is still healthy afterwards.
func TestFaultBadInput(t *testing.T) {
	off := disabledServer(t, "off")
	p := startProxy(t, servers(stdioFixture(t, "fx"), off))
	p.waitState("fx", 30*time.Second, actors.StateReady)

	names := []string{
		"fx", "nope", "..", "...", "%2E%2E", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "a%00b", "a%20b",
		"%FF%FE", "%C0%AF", url.PathEscape("сервер"), url.PathEscape("🙂"), url.PathEscape("x\u202ey"),
		strings.Repeat("a", 10<<10), url.PathEscape(strings.Repeat("é", 3000)), "a;b", "%25", "fx%3Aecho", "-1", "0",
	}
	bodies := []string{
		"", "{", "}", "null", "[]", `"str"`, "123", "true", "{}", `{"quarantined":"yes"}`, `{"quarantined":null}`,
		`{"quarantined":1}`, `{"value":123}`, `{"value":null}`, `{"value":["x"]}`, `{"mcpServers":5}`, `{"mcpServers":[{"name":5}]}`,
		`{"mcpServers":{"a":{"command":[]}}}`, `{"listen":{}}`, "\xff\xfe\xfd", `{"a":"\ud800"}`, `{"a":1}{"b":2}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"call_tool","arguments":{"name":"../x","arguments":5}}}`,
		`{"jsonrpc":"2.0","id":{},"method":5}`, `[{"jsonrpc":"2.0"}]`,
	}
	heavy := []string{
		strings.Repeat("[", 200_000) + strings.Repeat("]", 200_000),
		`{"value":"` + strings.Repeat("x", 9<<20) + `"}`,
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	type result struct {
		method, path, body string
		code               int
	}
	var bad []result
	n := 0
	send := func(method, path, body string, header map[string]string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, p.URL+path, r)
		if err != nil {
			return // a path the client itself refuses to send
		}
		req.Header.Set("X-API-Key", p.Key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		n++
		if err != nil {
			t.Fatalf("%s %s: %v (did the daemon die?)", method, snippet([]byte(path)), err)
		}
		// Streams (events, MCP GET) stay open: the status is what counts.
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			bad = append(bad, result{method, path, body, resp.StatusCode})
		}
	}
	routes := p.D.HTTP.Engine().Routes()
	if len(routes) < 30 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	// Every body on each route with a good name and two bad ones; every name with two
	// bodies. The long form crosses all names with all bodies.
	full := map[string]bool{"fx": true, "..%2F..%2Fetc%2Fpasswd": true, strings.Repeat("a", 10<<10): true}
	for _, rt := range routes {
		// A valid config is applied, and "null" is checked on its own below: neither may
		// wipe the servers in the middle of the sweep.
		skip := map[string]bool{}
		if rt.Path == "/api/v1/config/apply" {
			skip = map[string]bool{"{}": true, "null": true}
		}
		// DELETE /api/v1/servers/fx is a good request that removes fx: the sweep sends it
		// only bad names.
		removes := rt.Method == http.MethodDelete && rt.Path == "/api/v1/servers/:name"
		paths := []string{rt.Path}
		if strings.ContainsAny(rt.Path, ":*") {
			paths = paths[:0]
			for _, name := range names {
				if removes && name == "fx" {
					name = "nope"
				}
				paths = append(paths, fillParams(rt.Path, name))
			}
		}
		for i, path := range paths {
			some := bodies
			if !soakMode() && !full[names[min(i, len(names)-1)]] && len(paths) > 1 {
				some = []string{"", "{"}
			}
			for _, body := range some {
				if !skip[body] {
					send(rt.Method, path, body, nil)
				}
			}
			if i == 0 {
				for _, body := range heavy {
					send(rt.Method, path, body, nil)
				}
			}
		}
		// Query strings the handlers parse.
		for _, q := range []string{"?q=%00", "?limit=abc", "?limit=-1", "?limit=99999999999999999999", "?q=" + strings.Repeat("a", 10<<10), "?apikey=wrong", "?limit=1&limit=2"} {
			if !removes {
				send(rt.Method, fillParams(rt.Path, "fx")+q, "", nil)
			}
		}
	}
	for _, id := range []string{"abc", "-1", "0", "1e3", "99999999999999999999999", strings.Repeat("9", 10<<10), " 1", "1,2", "18446744073709551615"} {
		for _, hdr := range []map[string]string{{"Last-Event-ID": id}} {
			send("GET", "/events", "", hdr)
		}
		send("GET", "/events?lastEventId="+url.QueryEscape(id), "", nil)
	}
	for _, h := range []map[string]string{
		{"Content-Type": "text/plain"}, {"Content-Type": "application/json; charset=utf-16"},
		{"Mcp-Session-Id": "../../x"}, {"Mcp-Session-Id": strings.Repeat("z", 8<<10)}, {"MCP-Protocol-Version": "1999-01-01"},
		{"Authorization": "Bearer " + strings.Repeat("k", 8<<10)}, {"Origin": "null"}, {"Host": "127.0.0.1:1"},
	} {
		send("POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, h)
		send("POST", "/api/v1/servers/fx/quarantine", `{"quarantined":false}`, h)
	}
	// "null" is not a config: applying it must not wipe the servers.
	if code, body := p.do("POST", "/api/v1/config/apply", "null", nil); code != 400 {
		t.Errorf("apply null: %d %s, want 400", code, snippet(body))
	}
	var list struct {
		Servers []actors.Server `json:"servers"`
	}
	if p.do("GET", "/api/v1/servers", nil, &list); len(list.Servers) != 2 {
		t.Errorf("after the bad input %d servers are left, want fx and off", len(list.Servers))
	}
	t.Logf("%d requests over %d routes", n, len(routes))
	for i, b := range bad {
		if i == 20 {
			t.Errorf("... and %d more", len(bad)-20)
			break
		}
		t.Errorf("%s %s body %q: %d", b.method, snippet([]byte(b.path)), snippet([]byte(b.body)), b.code)
	}
	for _, path := range []string{"/healthz", "/readyz", "/api/v1/status", "/api/v1/servers"} {
		if code, body := p.do("GET", path, nil, nil); code != 200 {
			t.Errorf("after the bad input, %s: %d %s", path, code, snippet(body))
		}
	}
	// Last, because while the bug it checks for is there, the daemon stays busy with it: a
	// config of 20,000 entries with one name (560 KB, well under the 8 MiB limit) is
	// answered at once: its errors are listed up to config.MaxErrors.
	dup := `{"mcpServers":[` + strings.Repeat(`{"name":"a","command":"x"},`, 20_000) + `{"name":"b","command":"x"}]}`
	for _, path := range []string{"/api/v1/config/validate", "/api/v1/config/apply"} {
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "POST", p.URL+path, strings.NewReader(dup))
		req.Header.Set("X-API-Key", p.Key)
		resp, err := hc.Do(req)
		cancel()
		if err != nil {
			t.Errorf("POST %s with 20,000 duplicate names: no answer in %s (%v): the check is quadratic", path, time.Since(t0).Round(time.Millisecond), err)
			break // the daemon is still busy with it; a second one would only add to that
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("POST %s with 20,000 duplicate names: %d", path, resp.StatusCode)
		}
	}
}

// fillParams puts value into every :param and *param of a gin route path.
func fillParams(path, value string) string {
	parts := strings.Split(path, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			parts[i] = value
		}
	}
	return strings.Join(parts, "/")
}
