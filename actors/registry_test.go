package actors

// In-process tests of the registry actor with real upstreams (the test/fixture binary over
// stdio, streamable HTTP and SSE). The hub is replaced by a probe actor that records every
// domain event, so a test can wait for exactly the tools.indexed, servers.changed or
// config.reloaded event it expects instead of sleeping.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/config"
)

var (
	fixtureOnce sync.Once
	fixturePath string
	fixtureErr  error
)

// fixtureBin builds test/fixture once per test binary and returns its path.
func fixtureBin(t testing.TB) string {
	t.Helper()
	fixtureOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mcpproxy-actors-fixture-")
		if err != nil {
			fixtureErr = err
			return
		}
		fixturePath = filepath.Join(dir, "fixture")
		cmd := exec.Command("go", "build", "-o", fixturePath, "./test/fixture")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			fixtureErr = fmt.Errorf("go build ./test/fixture: %v\n%s", err, out)
		}
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixturePath
}

// startFixtureHTTP runs the fixture with --transport http or sse and returns its URL; the
// process is killed at cleanup.
func startFixtureHTTP(t testing.TB, transport string) string {
	t.Helper()
	cmd := exec.Command(fixtureBin(t), "--transport", transport, "--listen", "127.0.0.1:0")
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
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				urls <- u
			}
		}
	}()
	select {
	case u := <-urls:
		return u
	case <-time.After(20 * time.Second):
		t.Fatalf("fixture %s did not print its URL", transport)
		return ""
	}
}

// probe stands in for the hub: it records every Event and wakes waiters.
type probe struct {
	mu     sync.Mutex
	events []Event
	wake   chan struct{} // closed and replaced on every event
	// seen, when set, is called with each event's position as it arrives.
	seen func(i int, e Event)
}

func newProbe() *probe { return &probe{wake: make(chan struct{})} }

func (p *probe) Receive(ctx actor.Context) {
	if e, ok := ctx.Message().(Event); ok {
		p.mu.Lock()
		if p.seen != nil {
			p.seen(len(p.events), e)
		}
		p.events = append(p.events, e)
		close(p.wake)
		p.wake = make(chan struct{})
		p.mu.Unlock()
	}
}

// mark is the position after the events recorded so far; wait looks from a mark on.
func (p *probe) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events)
}

// snapshot returns the events from position from on.
func (p *probe) snapshot(from int) []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events[from:])
}

// payload is an event's data decoded loosely.
type payload map[string]any

func (d payload) str(k string) string { s, _ := d[k].(string); return s }
func (d payload) num(k string) int    { f, _ := d[k].(float64); return int(f) }

func decode(t testing.TB, e Event) payload {
	t.Helper()
	var d payload
	data, err := e.JSON()
	if err != nil {
		t.Fatalf("event %s: %v", e.Name, err)
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("event %s: bad data %q: %v", e.Name, data, err)
	}
	return d
}

// wait blocks until an event named name whose data satisfies match arrives at or after
// position from, and returns its position and data; it fails the test after timeout.
func (p *probe) wait(t testing.TB, from int, timeout time.Duration, name string, match func(payload) bool) (int, payload) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		events, wake := p.events, p.wake
		p.mu.Unlock()
		for i := from; i < len(events); i++ {
			if events[i].Name != name {
				continue
			}
			if d := decode(t, events[i]); match == nil || match(d) {
				return i, d
			}
		}
		from = max(from, len(events))
		select {
		case <-wake:
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", timeout, name)
		}
	}
}

// indexed matches tools.indexed for server with n tools in the index.
func indexed(server string, n int) func(payload) bool {
	return func(d payload) bool { return d.str("server") == server && d.num("server_tools") == n }
}

// regHarness is a registry actor with a probe hub and a typed client.
type regHarness struct {
	sys    *actor.ActorSystem
	pid    *actor.PID
	hub    *actor.PID
	c      *Client
	events *probe
	path   string
}

// startRegistry writes cfg to a temporary config file and starts a registry on it.
func startRegistry(t testing.TB, cfg *config.Config, tune ...func(*regHarness, *RegistryOptions)) *regHarness {
	t.Helper()
	path := filepath.Join(t.TempDir(), config.FileName)
	if _, err := config.Save(path, cfg); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	h := &regHarness{sys: sys, events: newProbe(), path: path}
	h.hub = h.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return h.events }))
	opts := RegistryOptions{Config: cfg, ConfigPath: path, Hub: h.hub, BackoffBase: 50 * time.Millisecond}
	for _, f := range tune {
		f(h, &opts)
	}
	pid, err := h.sys.Root.SpawnNamed(NewRegistryProps(opts), "registry")
	if err != nil {
		t.Fatal(err)
	}
	h.pid = pid
	h.c = NewClient(h.sys, pid)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := h.c.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		_ = h.sys.Root.PoisonFuture(pid).Wait()
		_ = h.sys.Root.PoisonFuture(h.hub).Wait()
		h.sys.Shutdown()
	})
	return h
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitState polls until the server is in state.
func (h *regHarness) waitState(t testing.TB, name string, state State) Server {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s, err := h.c.Server(ctxT(t), name)
		if err == nil && s.State == state {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("server %s did not reach %s (last %+v, err %v)", name, state, s, err)
		}
		<-tick.C
	}
}

// search returns the names of the hits, best first.
func (h *regHarness) search(t testing.TB, q string, limit int) []string {
	t.Helper()
	hits, _, err := h.c.SearchTools(ctxT(t), q, limit)
	if err != nil {
		t.Fatalf("search %q: %v", q, err)
	}
	names := make([]string, len(hits))
	for i, hit := range hits {
		names[i] = hit.Name
	}
	return names
}

func (h *regHarness) total(t testing.TB) int {
	t.Helper()
	st, err := h.c.Status(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return st.Tools.Total
}

func (h *regHarness) call(t testing.TB, tool string, args map[string]any) string {
	t.Helper()
	res, err := h.c.CallTool(ctxT(t), tool, args, nil, 0, nil)
	if err != nil {
		t.Fatalf("call %s: %v", tool, err)
	}
	var text strings.Builder
	for _, c := range res.Content {
		b, _ := json.Marshal(c)
		text.Write(b)
	}
	if res.IsError {
		t.Fatalf("call %s: tool error %s", tool, text.String())
	}
	return text.String()
}

func fixtureServer(t testing.TB, name string, quarantined bool, args ...string) config.ServerConfig {
	return config.ServerConfig{
		Name: name, Command: fixtureBin(t), Args: append([]string{"--name", name}, args...),
		Quarantined: boolPtr(quarantined),
	}
}

func withPrefix(names []string, prefix string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// TestRegistryIndexFollowsLifecycle checks that quarantine, disable and a killed upstream
// take a server's tools out of the index with a tools.indexed event, that unquarantine,
// enable and recovery put them back, and that a quarantined server's tools never appear,
// not even for their exact name.
func TestRegistryIndexFollowsLifecycle(t *testing.T) {
	h := startRegistry(t, &config.Config{Servers: []config.ServerConfig{
		fixtureServer(t, "a", false), fixtureServer(t, "b", false), fixtureServer(t, "q", true),
	}})
	for _, n := range []string{"a", "b", "q"} {
		h.waitState(t, n, StateReady)
	}
	st, err := h.c.ServerTools(ctxT(t), "a")
	if err != nil {
		t.Fatal(err)
	}
	n := len(st.Tools)
	if n == 0 {
		t.Fatal("fixture lists no tools")
	}
	h.events.wait(t, 0, 5*time.Second, "tools.indexed", indexed("a", n))
	h.events.wait(t, 0, 5*time.Second, "tools.indexed", indexed("b", n))
	if got := h.total(t); got != 2*n {
		t.Fatalf("tools.total = %d, want %d (a and b, not q)", got, 2*n)
	}

	noQ := func(t *testing.T, server string) {
		t.Helper()
		for _, q := range []string{server + ":echo", "echo", server, ""} {
			if hits := withPrefix(h.search(t, q, 1000), server+":"); len(hits) > 0 {
				t.Errorf("search %q finds %v of non-reachable server %s", q, hits, server)
			}
		}
	}
	t.Run("quarantined tools never appear", func(t *testing.T) {
		qt, err := h.c.ServerTools(ctxT(t), "q")
		if err != nil || len(qt.Tools) != n || !qt.Quarantined {
			t.Fatalf("q's tools are not listed for review: %+v %v", qt, err)
		}
		noQ(t, "q")
		for _, e := range h.events.snapshot(0) {
			if d := decode(t, e); e.Name == "tools.indexed" && d.str("server") == "q" && d.num("server_tools") > 0 {
				t.Errorf("q entered the index: %v", d)
			}
		}
	})

	t.Run("quarantine and unquarantine", func(t *testing.T) {
		m := h.events.mark()
		if _, err := h.c.SetQuarantined(ctxT(t), "a", true); err != nil {
			t.Fatal(err)
		}
		_, d := h.events.wait(t, m, 5*time.Second, "tools.indexed", indexed("a", 0))
		if d.num("total") != n {
			t.Errorf("tools.indexed total %d after quarantining a, want %d", d.num("total"), n)
		}
		noQ(t, "a")
		if got := h.total(t); got != n {
			t.Errorf("tools.total = %d, want %d", got, n)
		}
		m = h.events.mark()
		if _, err := h.c.SetQuarantined(ctxT(t), "a", false); err != nil {
			t.Fatal(err)
		}
		h.events.wait(t, m, 5*time.Second, "tools.indexed", indexed("a", n))
		if hits := h.search(t, "a:echo", 3); len(hits) == 0 || hits[0] != "a:echo" {
			t.Errorf("after unquarantine, search a:echo = %v", hits)
		}
	})

	// A hit of a query says which fields it matched; a listing
	// without a query explains nothing.
	t.Run("hits explain themselves", func(t *testing.T) {
		hits, _, err := h.c.SearchTools(ctxT(t), "echo", 3)
		if err != nil || len(hits) == 0 || !slices.Contains(hits[0].Matched, "name") {
			t.Fatalf("search echo: %v %+v, want the top hit to say its name matched", err, hits)
		}
		all, _, err := h.c.SearchTools(ctxT(t), "", 3)
		if err != nil || len(all) == 0 || all[0].Matched != nil {
			t.Fatalf("listing: %v %+v, want no explanation without a query", err, all)
		}
	})

	t.Run("disable and enable", func(t *testing.T) {
		m := h.events.mark()
		if _, err := h.c.SetEnabled(ctxT(t), "b", false); err != nil {
			t.Fatal(err)
		}
		h.events.wait(t, m, 5*time.Second, "tools.indexed", indexed("b", 0))
		noQ(t, "b")
		m = h.events.mark()
		if _, err := h.c.SetEnabled(ctxT(t), "b", true); err != nil {
			t.Fatal(err)
		}
		h.events.wait(t, m, 30*time.Second, "tools.indexed", indexed("b", n))
		if got := withPrefix(h.search(t, "", 1000), "b:"); len(got) != n {
			t.Errorf("after enable, %d tools of b listed, want %d", len(got), n)
		}
	})

	t.Run("failure and recovery", func(t *testing.T) {
		before := h.waitState(t, "a", StateReady)
		if before.PID == 0 {
			t.Fatal("no process id for a")
		}
		m := h.events.mark()
		if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		i, _ := h.events.wait(t, m, 10*time.Second, "tools.indexed", indexed("a", 0))
		h.events.wait(t, i+1, 30*time.Second, "tools.indexed", indexed("a", n))
		after := h.waitState(t, "a", StateReady)
		if after.PID == before.PID || after.PID == 0 {
			t.Errorf("recovered with process %d, killed %d", after.PID, before.PID)
		}
		if got := h.total(t); got != 2*n {
			t.Errorf("tools.total = %d after recovery, want %d", got, 2*n)
		}
	})

	t.Run("status total equals index size", func(t *testing.T) {
		all := h.search(t, "", 1000)
		if got := h.total(t); got != len(all) {
			t.Errorf("tools.total %d, all tools listed %d", got, len(all))
		}
		if !slices.IsSorted(all) {
			t.Errorf("blank query does not list by name: %v", all)
		}
	})
}

// TestRegistryListChangedReindexes adds and removes a tool at run time through the
// fixture's add_tool and remove_tool: the upstream's notifications/tools/list_changed must
// bring search results up to date without a restart, over every transport. The new tool
// of the approved server awaits review (tool-level trust) until it is approved.
func TestRegistryListChangedReindexes(t *testing.T) {
	for _, transport := range []string{"stdio", "http", "sse"} {
		t.Run(transport, func(t *testing.T) {
			sc := fixtureServer(t, "fx", false)
			if transport != "stdio" {
				sc = config.ServerConfig{Name: "fx", Protocol: transport, URL: startFixtureHTTP(t, transport), Quarantined: boolPtr(false)}
			}
			h := startRegistry(t, &config.Config{Servers: []config.ServerConfig{sc}})
			before := h.waitState(t, "fx", StateReady)
			n := before.ToolsCount
			h.events.wait(t, 0, 5*time.Second, "tools.indexed", indexed("fx", n))
			if hits := h.search(t, "frobnicate zebras", 5); slices.Contains(hits, "fx:zebra_frobnicator") {
				t.Fatalf("tool found before it exists: %v", hits)
			}

			m := h.events.mark()
			h.call(t, "fx:add_tool", map[string]any{"name": "zebra_frobnicator", "description": "Frobnicate the zebras of a paddock"})
			h.events.wait(t, m, 10*time.Second, "servers.changed", func(d payload) bool { return d.str("reason") == ReasonToolsReview })
			if hits := h.search(t, "frobnicate zebras", 5); slices.Contains(hits, "fx:zebra_frobnicator") {
				t.Fatalf("a new tool is found before its approval: %v", hits)
			}
			if _, err := h.c.CallTool(ctxT(t), "fx:zebra_frobnicator", map[string]any{}, nil, 0, nil); err == nil || !strings.Contains(err.Error(), "awaits review") {
				t.Fatalf("calling the new tool before its approval: %v", err)
			}
			if st, _ := h.c.Status(ctxT(t)); st.Tools.AwaitingReview != 1 {
				t.Errorf("status tools.awaiting_review = %d, want 1", st.Tools.AwaitingReview)
			}
			m = h.events.mark()
			if _, err := h.c.ApproveTools(ctxT(t), "fx", []string{"zebra_frobnicator"}, false); err != nil {
				t.Fatal(err)
			}
			h.events.wait(t, m, 10*time.Second, "tools.indexed", indexed("fx", n+1))
			if hits := h.search(t, "frobnicate zebras", 5); len(hits) == 0 || hits[0] != "fx:zebra_frobnicator" {
				t.Errorf("after add_tool, search = %v, want fx:zebra_frobnicator first", hits)
			}
			if got := h.total(t); got != n+1 {
				t.Errorf("tools.total = %d, want %d", got, n+1)
			}
			// The new tool is callable, so the registry's tool list was updated too.
			if out := h.call(t, "fx:zebra_frobnicator", map[string]any{"x": 1}); !strings.Contains(out, `\"x\":1`) {
				t.Errorf("calling the new tool gave %s", out)
			}

			m = h.events.mark()
			h.call(t, "fx:remove_tool", map[string]any{"name": "zebra_frobnicator"})
			h.events.wait(t, m, 10*time.Second, "tools.indexed", indexed("fx", n))
			if hits := h.search(t, "frobnicate zebras", 5); slices.Contains(hits, "fx:zebra_frobnicator") {
				t.Errorf("removed tool still found: %v", hits)
			}
			after, _ := h.c.Server(ctxT(t), "fx")
			if transport == "stdio" && after.PID != before.PID {
				t.Errorf("list_changed restarted the upstream: pid %d -> %d", before.PID, after.PID)
			}
		})
	}
}

// TestRegistryApplyDiff applies a config that keeps one server, changes one, removes one and
// adds one: only the changed and added ones get new processes, the removed one's tools leave
// the index before the reply, and config.reloaded names the diff.
func TestRegistryApplyDiff(t *testing.T) {
	keep, change, drop := fixtureServer(t, "keep", false), fixtureServer(t, "change", false), fixtureServer(t, "drop", false)
	h := startRegistry(t, &config.Config{Servers: []config.ServerConfig{keep, change, drop}})
	pids := map[string]int{}
	for _, n := range []string{"keep", "change", "drop"} {
		pids[n] = h.waitState(t, n, StateReady).PID
	}
	n := h.waitState(t, "keep", StateReady).ToolsCount

	changed := change
	changed.Env = map[string]string{"NEW_VAR": "1"}
	add := fixtureServer(t, "add", false)
	m := h.events.mark()
	res, err := h.c.Apply(ctxT(t), &config.Config{Servers: []config.ServerConfig{keep, changed, add}}, "api")
	if err != nil {
		t.Fatal(err)
	}
	want := ApplyResult{Applied: true, Added: []string{"add"}, Removed: []string{"drop"}, Changed: []string{"change"},
		Unchanged: []string{"keep"}, RestartRequired: []string{}}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Errorf("apply = %+v, want %+v", res, want)
	}
	if hits := withPrefix(h.search(t, "", 1000), "drop:"); len(hits) > 0 {
		t.Errorf("removed server's tools still searchable after the reply: %v", hits)
	}
	_, d := h.events.wait(t, m, 5*time.Second, "config.reloaded", nil)
	if d.str("source") != "api" || fmt.Sprint(d["added"]) != "[add]" || fmt.Sprint(d["removed"]) != "[drop]" || fmt.Sprint(d["changed"]) != "[change]" {
		t.Errorf("config.reloaded = %v", d)
	}
	h.events.wait(t, m, 10*time.Second, "servers.changed", func(d payload) bool { return d.str("reason") == ReasonRemoved })
	h.events.wait(t, m, 10*time.Second, "servers.changed", func(d payload) bool { return d.str("reason") == ReasonAdded })

	if s := h.waitState(t, "keep", StateReady); s.PID != pids["keep"] {
		t.Errorf("unchanged server restarted: pid %d -> %d", pids["keep"], s.PID)
	}
	if s := h.waitState(t, "change", StateReady); s.PID == pids["change"] {
		t.Errorf("changed server kept its process %d", s.PID)
	}
	h.waitState(t, "add", StateReady)
	// The row goes (with the removed event waited for above) once the process is gone.
	if _, err := h.c.Server(ctxT(t), "drop"); ErrorCode(err) != CodeNotFound {
		t.Errorf("removed server still listed: %v", err)
	}
	if alive(pids["drop"]) {
		t.Errorf("removed server's process %d still runs", pids["drop"])
	}
	if got := h.total(t); got != 3*n {
		t.Errorf("tools.total = %d, want %d", got, 3*n)
	}

	// The file says what was applied.
	onDisk, err := config.Load(h.path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range onDisk.Servers {
		names = append(names, s.Name)
	}
	if fmt.Sprint(names) != "[keep change add]" {
		t.Errorf("saved servers %v", names)
	}
}

// TestRegistryApplyFlagsOnly flips enabled and quarantined through an apply: no restart of a
// server whose definition is the same, and the index follows the flags.
func TestRegistryApplyFlagsOnly(t *testing.T) {
	a, b := fixtureServer(t, "a", false), fixtureServer(t, "b", false)
	h := startRegistry(t, &config.Config{Servers: []config.ServerConfig{a, b}})
	pa := h.waitState(t, "a", StateReady).PID
	h.waitState(t, "b", StateReady)
	n := h.waitState(t, "a", StateReady).ToolsCount

	a.Quarantined = boolPtr(true)
	b.Enabled = boolPtr(false)
	m := h.events.mark()
	res, err := h.c.Apply(ctxT(t), &config.Config{Servers: []config.ServerConfig{a, b}}, "api")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Changed) != "[a b]" || len(res.Unchanged) != 0 {
		t.Errorf("apply = %+v, want a and b changed", res)
	}
	h.events.wait(t, m, 5*time.Second, "tools.indexed", indexed("a", 0))
	h.events.wait(t, m, 5*time.Second, "tools.indexed", indexed("b", 0))
	h.waitState(t, "b", StateDisabled)
	if s := h.waitState(t, "a", StateReady); s.PID != pa || !s.Quarantined {
		t.Errorf("quarantining through apply restarted a or did not quarantine it: %+v (pid was %d)", s, pa)
	}

	a.Quarantined = boolPtr(false)
	m = h.events.mark()
	if _, err := h.c.Apply(ctxT(t), &config.Config{Servers: []config.ServerConfig{a, b}}, "file"); err != nil {
		t.Fatal(err)
	}
	h.events.wait(t, m, 5*time.Second, "tools.indexed", indexed("a", n))
	_, d := h.events.wait(t, m, 5*time.Second, "config.reloaded", nil)
	if d.str("source") != "file" || fmt.Sprint(d["changed"]) != "[a]" {
		t.Errorf("config.reloaded = %v, want source file, changed [a]", d)
	}
}

// TestRegistryApplyInvalidChangesNothing sends a config that does not validate: the reply
// names the fields and neither the servers nor the file change.
func TestRegistryApplyInvalidChangesNothing(t *testing.T) {
	a := fixtureServer(t, "a", false)
	h := startRegistry(t, &config.Config{Servers: []config.ServerConfig{a}})
	pa := h.waitState(t, "a", StateReady).PID
	before, err := os.ReadFile(h.path)
	if err != nil {
		t.Fatal(err)
	}
	m := h.events.mark()
	bad := &config.Config{Servers: []config.ServerConfig{a, {Name: "a"}, {Name: "x", Env: map[string]string{"K": config.Redacted}, Command: "y"}}}
	_, err = h.c.Apply(ctxT(t), bad, "api")
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeInvalidArgument || len(e.Fields) == 0 {
		t.Fatalf("apply of an invalid config: %v", err)
	}
	for _, fe := range e.Fields {
		if !strings.HasPrefix(fe.Field, "mcpServers[") {
			t.Errorf("error does not name a server field: %+v", fe)
		}
	}
	after, _ := os.ReadFile(h.path)
	if string(after) != string(before) {
		t.Errorf("invalid apply changed the file")
	}
	if s := h.waitState(t, "a", StateReady); s.PID != pa {
		t.Errorf("invalid apply restarted a")
	}
	for _, e := range h.events.snapshot(m) {
		if e.Name == "config.reloaded" {
			t.Errorf("invalid apply published %v", decode(t, e))
		}
	}
}

func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// BenchmarkRegistryReindex100 measures B4's "re-index of one 100-tool server" through the
// real registry: 100 servers with 100 tools each (10,000 in the index); one server reports a
// new tool list, and the time is until its tools.indexed event reaches the hub. The servers'
// commands do not exist, so their actors sit in backoff (base 1 h) and the benchmark feeds
// the tool lists as their status messages.
func BenchmarkRegistryReindex100(b *testing.B) {
	const servers, perServer = 100, 100
	cfg := &config.Config{}
	for i := range servers {
		cfg.Servers = append(cfg.Servers, config.ServerConfig{
			Name: fmt.Sprintf("srv%03d", i), Command: "/nonexistent/mcp-server", Quarantined: boolPtr(false),
		})
	}
	h := startRegistry(b, cfg, func(_ *regHarness, o *RegistryOptions) { o.BackoffBase = time.Hour })
	for i := range servers {
		h.waitState(b, fmt.Sprintf("srv%03d", i), StateBackoff)
	}
	toolsFor := func(server string, round int) []Tool {
		out := make([]Tool, perServer)
		for j := range out {
			raw := fmt.Sprintf("%s_%s_item_%d_v%d", []string{"create", "list", "delete", "update", "search"}[j%5],
				[]string{"issue", "file", "user", "record", "page"}[(j/5)%5], j, round%2)
			out[j] = Tool{Name: server + ":" + raw, Server: server, Raw: raw,
				Description: fmt.Sprintf("Tool %d of %s: works on items of kind %d", j, server, j%7)}
		}
		return out
	}
	// Spawn order gives server i the child generation i+1.
	ready := func(i, round int) {
		name := fmt.Sprintf("srv%03d", i)
		h.sys.Root.Send(h.pid, upstreamStatus{Name: name, ChildGen: i + 1, State: StateReady, Tools: toolsFor(name, round)})
	}
	m := h.events.mark()
	for i := range servers {
		ready(i, 0)
	}
	h.events.wait(b, m, 30*time.Second, "tools.indexed", func(d payload) bool { return d.num("total") == servers*perServer })
	b.ResetTimer()
	round := 0
	for b.Loop() {
		round++
		m := h.events.mark()
		ready(42, round)
		h.events.wait(b, m, 10*time.Second, "tools.indexed", indexed("srv042", perServer))
	}
	b.StopTimer()
	if got := h.total(b); got != servers*perServer {
		b.Fatalf("index holds %d tools, want %d", got, servers*perServer)
	}
}

// TestRegistryFileApplyRejectsPlaceholders: "********" keeps the current value in an API
// apply, but a file edit holding it is invalid (the next start would load it literally),
// and names the field.
func TestRegistryFileApplyRejectsPlaceholders(t *testing.T) {
	a := config.ServerConfig{Name: "a", Command: "x", Enabled: boolPtr(false), Env: map[string]string{"TOKEN": "literal"}}
	h := startRegistry(t, &config.Config{APIKey: "k", Servers: []config.ServerConfig{a}})
	redacted := a
	redacted.Env = map[string]string{"TOKEN": config.Redacted}
	withRedacted := &config.Config{APIKey: config.Redacted, Servers: []config.ServerConfig{redacted}}

	_, err := h.c.Apply(ctxT(t), withRedacted, "file")
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeInvalidArgument {
		t.Fatalf("file apply with placeholders: %v", err)
	}
	var fields []string
	for _, fe := range e.Fields {
		fields = append(fields, fe.Field)
	}
	if fmt.Sprint(fields) != "[api_key mcpServers[0].env.TOKEN]" {
		t.Errorf("fields %v", fields)
	}

	res, err := h.c.Apply(ctxT(t), withRedacted, "api")
	if err != nil || fmt.Sprint(res.Unchanged) != "[a]" {
		t.Fatalf("api apply with placeholders: %+v %v", res, err)
	}
	cur, err := h.c.Config(ctxT(t))
	if err != nil || cur.APIKey != "k" || cur.Servers[0].Env["TOKEN"] != "literal" {
		t.Errorf("api apply did not keep the values: %+v %v", cur, err)
	}
}

// checkCounts asks for the kept status counts and a fresh count in one message and fails
// when they differ.
func (h *regHarness) checkCounts(t testing.TB, when string) Status {
	t.Helper()
	got, err := askValue[[2]Status](h.c, ctxT(t), recountStatus{})
	if err != nil {
		t.Fatalf("%s: recount: %v", when, err)
	}
	if got[0] != got[1] {
		t.Fatalf("%s: kept counts %+v, counted afresh %+v", when, got[0], got[1])
	}
	return got[0]
}

// settleCounts checks the counts again and again while the servers settle after a change,
// until want holds for them.
func (h *regHarness) settleCounts(t testing.TB, when string, want func(StatusServers) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := h.checkCounts(t, when)
		if want(st.Servers) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: counts did not settle: %+v", when, st.Servers)
		}
		time.Sleep(5 * time.Millisecond) // a poll interval, not a synchronisation
	}
}

// TestRegistryCountsFollowRows drives every kind of row change (spawn, ready, failure and
// backoff, disable, enable, quarantine, restart, the bulk operations, apply with added,
// removed, changed and flag-only servers, removal of a running server) and checks at every
// step, and while servers settle, that the counts the registry keeps for GET
// /api/v1/status are the ones a walk over all rows gives.
//
// It runs twice: with the default start window and with a window of one, where servers wait
// in the start queue and are disabled, removed and changed while they wait.
func TestRegistryCountsFollowRows(t *testing.T) {
	for _, limit := range []int{0, 1} {
		t.Run(fmt.Sprintf("start_concurrency=%d", limit), func(t *testing.T) { testCountsFollowRows(t, limit) })
	}
}

// closedURL is an MCP URL on a loopback port that nothing listens on: every dial is refused.
func closedURL(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String() + "/mcp"
}

func testCountsFollowRows(t *testing.T, startConcurrency int) {
	a, q := fixtureServer(t, "a", false), fixtureServer(t, "q", true)
	dead := config.ServerConfig{Name: "dead", URL: closedURL(t), Quarantined: boolPtr(false)}
	off := fixtureServer(t, "off", false)
	off.Enabled = boolPtr(false)
	h := startRegistry(t, &config.Config{Servers: []config.ServerConfig{a, q, dead, off}},
		func(_ *regHarness, o *RegistryOptions) { o.StartConcurrency = startConcurrency })
	h.settleCounts(t, "start", func(s StatusServers) bool {
		return s == StatusServers{Total: 4, Connected: 2, Quarantined: 1, Disabled: 1, Errored: 1}
	})

	// Each step gets its own bound (set in the loop below): one bound over the whole
	// sequence ran out on a loaded machine although every step was well within it.
	var ctx context.Context
	steps := []struct {
		name string
		do   func() error
		want StatusServers
	}{
		{"disable a", func() error { _, err := h.c.SetEnabled(ctx, "a", false); return err },
			StatusServers{Total: 4, Connected: 1, Quarantined: 1, Disabled: 2, Errored: 1}},
		{"enable a", func() error { _, err := h.c.SetEnabled(ctx, "a", true); return err },
			StatusServers{Total: 4, Connected: 2, Quarantined: 1, Disabled: 1, Errored: 1}},
		{"unquarantine q", func() error { _, err := h.c.SetQuarantined(ctx, "q", false); return err },
			StatusServers{Total: 4, Connected: 2, Quarantined: 0, Disabled: 1, Errored: 1}},
		{"restart a", func() error { _, err := h.c.Restart(ctx, "a"); return err },
			StatusServers{Total: 4, Connected: 2, Quarantined: 0, Disabled: 1, Errored: 1}},
		{"disable_all", func() error { _, err := h.c.Bulk(ctx, BulkDisableAll, Selection{}); return err },
			StatusServers{Total: 4, Disabled: 4}},
		{"enable_all", func() error { _, err := h.c.Bulk(ctx, BulkEnableAll, Selection{}); return err },
			StatusServers{Total: 4, Connected: 3, Errored: 1}},
		{"restart_all", func() error { _, err := h.c.Bulk(ctx, BulkRestartAll, Selection{}); return err },
			StatusServers{Total: 4, Connected: 3, Errored: 1}},
		{"reconnect", func() error { _, err := h.c.Bulk(ctx, BulkReconnect, Selection{}); return err },
			StatusServers{Total: 4, Connected: 3, Errored: 1}},
		{"apply: remove running a and dead, change q, quarantine and disable off, add b", func() error {
			q2 := q
			q2.Quarantined = boolPtr(false)
			q2.Env = map[string]string{"CHANGED": "1"}
			off2 := off
			off2.Quarantined = boolPtr(true)
			_, err := h.c.Apply(ctx, &config.Config{Servers: []config.ServerConfig{q2, off2, fixtureServer(t, "b", false)}}, "api")
			return err
		}, StatusServers{Total: 3, Connected: 2, Quarantined: 1, Disabled: 1}},
		{"apply: disable b by flag", func() error {
			q2 := q
			q2.Quarantined = boolPtr(false)
			q2.Env = map[string]string{"CHANGED": "1"}
			off2 := off
			off2.Quarantined = boolPtr(true)
			b := fixtureServer(t, "b", false)
			b.Enabled = boolPtr(false)
			_, err := h.c.Apply(ctx, &config.Config{Servers: []config.ServerConfig{q2, off2, b}}, "api")
			return err
		}, StatusServers{Total: 3, Connected: 1, Quarantined: 1, Disabled: 2}},
		{"apply: nothing", func() error {
			_, err := h.c.Apply(ctx, &config.Config{}, "api")
			return err
		}, StatusServers{}},
	}
	for _, st := range steps {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
		err := st.do()
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		h.checkCounts(t, st.name)
		h.settleCounts(t, st.name, func(s StatusServers) bool { return s == st.want })
	}
}

// suspendedWithDeadServer starts a registry with one server "dead" that fails and stays in
// backoff, and suspends the registry's mailbox, so that a test can queue messages before
// it resumes it (proc.SendSystemMessage(h.pid, &actor.ResumeMailbox{})).
func suspendedWithDeadServer(t *testing.T) (*regHarness, actor.Process) {
	t.Helper()
	h := startRegistry(t, &config.Config{Servers: []config.ServerConfig{
		{Name: "dead", URL: closedURL(t), Quarantined: boolPtr(false)},
	}}, func(_ *regHarness, o *RegistryOptions) { o.BackoffBase = time.Hour })
	h.waitState(t, "dead", StateBackoff)
	proc, ok := h.sys.ProcessRegistry.Get(h.pid)
	if !ok {
		t.Fatal("registry process not found")
	}
	proc.SendSystemMessage(h.pid, &actor.SuspendMailbox{})
	return h, proc
}

// TestRegistryDropsReportsFromBeforeARestart: requests overtake reports, so a report the
// upstream actor sent before it took a restart can reach the registry after the restart
// was answered; it must not be applied (it would show the old connection's state and tools
// as current: a server "ready" while it reconnects). The report carries the count of
// restarts the actor had taken, and one behind the registry's count is dropped.
func TestRegistryDropsReportsFromBeforeARestart(t *testing.T) {
	h, proc := suspendedWithDeadServer(t)
	// What the actor of generation 1 sent before the restart: ready with a tool list.
	h.sys.Root.Send(h.pid, upstreamStatus{Name: "dead", ChildGen: 1, State: StateReady,
		Tools: []Tool{{Name: "dead:stale", Server: "dead"}}})
	fut := h.sys.Root.RequestFuture(h.pid, restartServer{Name: "dead"}, 10*time.Second)
	proc.SendSystemMessage(h.pid, &actor.ResumeMailbox{})
	if _, err := fut.Result(); err != nil {
		t.Fatal(err)
	}
	// The actor's own reports after the restart (connecting, then the failed dial) come
	// after the stale one; once it is in backoff again, the stale one has been handled.
	h.waitState(t, "dead", StateBackoff)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := h.c.ServerTools(ctx, "dead")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Tools) != 0 {
		t.Fatalf("a report from before the restart was applied: tools %+v", st.Tools)
	}
}

// TestRegistryRequestsOvertakeReports checks that requests overtake the upstream actors'
// status reports in the registry's mailbox: with the mailbox suspended, a thousand reports
// are queued and then a request; the request must be answered from the state before any
// of those reports was applied. Without the priority mailbox it would wait behind them.
func TestRegistryRequestsOvertakeReports(t *testing.T) {
	h, proc := suspendedWithDeadServer(t)
	for i := range 1000 {
		// childGen 1: the first (and only) actor of the only server.
		h.sys.Root.Send(h.pid, upstreamStatus{Name: "dead", ChildGen: 1, State: StateError, LastError: fmt.Sprintf("injected %d", i)})
	}
	fut := h.sys.Root.RequestFuture(h.pid, getServer{Name: "dead"}, 10*time.Second)
	proc.SendSystemMessage(h.pid, &actor.ResumeMailbox{})
	res, err := fut.Result()
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := res.(reply).v.(Server)
	if strings.HasPrefix(srv.LastError, "injected") {
		t.Errorf("the request waited behind the reports: it saw last_error %q", srv.LastError)
	}
	// And the reports are all applied after it, in order.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := h.c.Server(ctxT(t), "dead")
		if err == nil && s.LastError == "injected 999" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reports were not applied in order: last_error %q, err %v", s.LastError, err)
		}
		time.Sleep(5 * time.Millisecond) // a poll interval
	}
}

// TestRegistryStartWindow starts six servers with a start window of two: the events show
// at most two of them in their first connect at any time, and every one of them starts.
func TestRegistryStartWindow(t *testing.T) {
	var servers []config.ServerConfig
	for i := range 6 {
		servers = append(servers, config.ServerConfig{Name: fmt.Sprintf("dead%d", i), URL: closedURL(t), Quarantined: boolPtr(false)})
	}
	h := startRegistry(t, &config.Config{Servers: servers}, func(_ *regHarness, o *RegistryOptions) {
		o.StartConcurrency = 2
		o.BackoffBase = time.Hour // one attempt each
	})
	for _, sc := range servers {
		h.waitState(t, sc.Name, StateBackoff)
	}
	inFlight, most, started := map[string]bool{}, 0, map[string]bool{}
	for _, e := range h.events.snapshot(0) {
		if e.Name != "servers.changed" {
			continue
		}
		d := decode(t, e)
		srv, _ := d["server"].(map[string]any)
		name, state := fmt.Sprint(srv["name"]), State(fmt.Sprint(srv["state"]))
		switch {
		case state == StateConnecting && !started[name]:
			started[name], inFlight[name] = true, true
		case state == StateError || state == StateBackoff:
			delete(inFlight, name)
		}
		most = max(most, len(inFlight))
	}
	if most > 2 {
		t.Errorf("%d servers were in their first connect at once, want at most 2", most)
	}
	if len(started) != len(servers) {
		t.Errorf("%d of %d servers started", len(started), len(servers))
	}
}

// TestRegistryPublishesChangeOnceDurable: the event of a flag change goes out only once the
// config file holds the change; a write still in progress holds the event back. The probe
// hub reads the file as each event arrives.
func TestRegistryPublishesChangeOnceDurable(t *testing.T) {
	a := fixtureServer(t, "a", false)
	entered, gate := make(chan struct{}, 1), make(chan struct{})
	var onDisk sync.Map // event position -> whether the file had a disabled
	h := startRegistry(t, &config.Config{Servers: []config.ServerConfig{a}}, func(h *regHarness, o *RegistryOptions) {
		o.BeforeSave = func([]byte) {
			select {
			case entered <- struct{}{}:
				<-gate
			default:
			}
		}
	})
	h.waitState(t, "a", StateReady)
	h.events.mu.Lock()
	h.events.seen = func(i int, e Event) {
		data, err := os.ReadFile(h.path)
		if err != nil {
			return
		}
		cfg, errs := config.Parse(data)
		onDisk.Store(i, len(errs) == 0 && len(cfg.Servers) == 1 && !cfg.Servers[0].IsEnabled())
	}
	h.events.mu.Unlock()
	m := h.events.mark()
	done := make(chan error, 1)
	go func() {
		_, err := h.c.SetEnabled(ctxT(t), "a", false)
		done <- err
	}()
	<-entered
	// The registry has finished the disable's turn once it answers the next request: an
	// event published in it has been sent to the hub.
	if _, err := h.c.Server(ctxT(t), "a"); err != nil {
		t.Fatal(err)
	}
	// Only the disable's own event counts: events of the first listing (held until its tool
	// pins were written) may still arrive after the mark.
	for _, e := range h.events.snapshot(m) {
		if e.Name == "servers.changed" && decode(t, e).str("reason") == ReasonDisabled {
			t.Errorf("the disable's event was published while the change was not on disk")
		}
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	i, _ := h.events.wait(t, m, 5*time.Second, "servers.changed", func(d payload) bool { return d.str("reason") == ReasonDisabled })
	if ok, _ := onDisk.Load(i); ok != true {
		t.Errorf("the disabled event arrived before the file held the change")
	}
}

// oddToolsScope allows every tool but those whose name ends in an odd digit.
type oddToolsScope struct{}

func (oddToolsScope) AllowsServer(string) bool { return true }
func (oddToolsScope) AllowsTool(_, tool string, _ bool) bool {
	last := tool[len(tool)-1]
	return last < '0' || last > '9' || (last-'0')%2 == 0
}

// TestScopedSearchOfManyTools: a scoped caller's search looks up each of a server's many
// hits by name (past toolNamed's scan, through its map) and gets each allowed tool, with
// its own fields, and none other.
func TestScopedSearchOfManyTools(t *testing.T) {
	h := startRegistry(t, &config.Config{Servers: []config.ServerConfig{fixtureServer(t, "big", false, "--tools", "89")}})
	h.waitState(t, "big", StateReady)
	st, err := h.c.ServerTools(ctxT(t), "big")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, tl := range st.Tools {
		if (oddToolsScope{}).AllowsTool("big", tl.Raw, false) {
			want[tl.Name] = tl.Description
		}
	}
	if len(want) < 40 {
		t.Fatalf("the fixture's 100 tools leave %d in scope", len(want))
	}
	ctx := WithCaller(ctxT(t), Caller{Scope: oddToolsScope{}})
	hits, total, err := h.c.SearchTools(ctx, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != len(want) || total != len(want) {
		t.Fatalf("scoped listing: %d hits, total %d, want %d", len(hits), total, len(want))
	}
	for _, hit := range hits {
		if d, ok := want[hit.Name]; !ok || d != hit.Description || hit.Server+":"+hit.Raw != hit.Name {
			t.Errorf("hit %s (%s:%s, %q) is not the allowed tool of that name", hit.Name, hit.Server, hit.Raw, hit.Description)
		}
	}
}

// TestToolNamed: a row finds its tools by own name, the first of a repeated one, in a short
// list by scanning and in a long one through its map, which a new list replaces.
func TestToolNamed(t *testing.T) {
	list := func(prefix string, n int) []Tool {
		var out []Tool
		for i := range n {
			out = append(out, Tool{Raw: fmt.Sprintf("%s%d", prefix, i), Description: "first"})
		}
		return append(out, Tool{Raw: prefix + "0", Description: "repeated"})
	}
	for _, n := range []int{3, scannedTools + 5} {
		var rw row
		rw.setTools(list("a", n))
		if got, ok := rw.toolNamed("a0"); !ok || got.Description != "first" {
			t.Errorf("%d tools: a0 = %+v %v, want the first a0", n, got, ok)
		}
		if got, ok := rw.toolNamed(fmt.Sprintf("a%d", n-1)); !ok || got.Raw != fmt.Sprintf("a%d", n-1) {
			t.Errorf("%d tools: last = %+v %v", n, got, ok)
		}
		rw.setTools(list("b", n))
		if _, ok := rw.toolNamed("a1"); ok {
			t.Errorf("%d tools: a1 still found after the list was replaced", n)
		}
		if _, ok := rw.toolNamed("b1"); !ok {
			t.Errorf("%d tools: b1 of the new list not found", n)
		}
	}
}
