package test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mcpproxy/mcpproxy/actors"
)

// TestShutdownLeavesNoGoroutines runs the daemon in-process through a life cycle (connect,
// disable, enable, restart, bulk) and checks that shutdown leaves no goroutine behind.
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
	p.Stop()
	// protoactor's dead-letter throttle is a timer goroutine that ends by itself a second
	// after a message reaches a stopped actor.
	goleak.VerifyNone(t, before,
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}
