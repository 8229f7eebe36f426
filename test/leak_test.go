package test

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/goleak"

	"github.com/mcpproxy/mcpproxy/actors"
)

// TestShutdownLeavesNoGoroutines runs the daemon in-process through a life cycle (connect,
// disable, enable, restart, bulk, passthrough sessions: one ended by a disable, one open
// at shutdown) and checks that shutdown leaves no goroutine and no session process behind.
func TestShutdownLeavesNoGoroutines(t *testing.T) {
	binaries(t)
	before := goleak.IgnoreCurrent()
	p := startProxy(t, servers(stdioFixture(t, "a"), stdioFixture(t, "b"), map[string]any{"name": "missing", "command": "/nonexistent/x"}))
	p.waitState("a", 20*time.Second, actors.StateReady)
	p.waitState("b", 20*time.Second, actors.StateReady)
	p.do("POST", "/api/v1/servers/a/disable", nil, nil)
	p.waitState("a", 10*time.Second, actors.StateDisabled)
	p.do("POST", "/api/v1/servers/a/enable", nil, nil)
	p.do("POST", "/api/v1/servers/b/restart", nil, nil)
	p.do("POST", "/api/v1/servers/restart_all", nil, nil)
	p.waitState("a", 20*time.Second, actors.StateReady)
	p.waitState("b", 20*time.Second, actors.StateReady)
	var pids []int
	for _, name := range []string{"a", "b"} {
		url := p.URL + "/mcp/server/" + name + "?apikey=" + p.Key
		code, sid, _ := rawPost(t, url, "", rawInit)
		if code != 200 {
			t.Fatalf("passthrough initialize on %s: %d", name, code)
		}
		_, _, answers := rawPost(t, url, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"pid","arguments":{}}}`)
		var res mcp.CallToolResult
		_ = json.Unmarshal(resultOf(t, answers), &res)
		pid, _ := strconv.Atoi(textOf(&res))
		if pid == 0 || !processAlive(pid) {
			t.Fatalf("passthrough session of %s: pid %q", name, textOf(&res))
		}
		pids = append(pids, pid)
	}
	p.do("POST", "/api/v1/servers/a/disable", nil, nil)
	waitFor(t, 10*time.Second, "a's passthrough session process to end", func() bool { return !processAlive(pids[0]) })
	p.Stop()
	if processAlive(pids[1]) {
		t.Error("b's passthrough session process outlived shutdown")
	}
	// protoactor's dead-letter throttle is a timer goroutine that ends by itself a second
	// after a message reaches a stopped actor.
	goleak.VerifyNone(t, before,
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}
