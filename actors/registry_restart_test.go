package actors

import (
	"fmt"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/config"
)

// TestRestartPacer: the window starts at restart_concurrency, grows by one per restart that
// comes back ready, halves on one that fails but never below restart_concurrency, stops at
// the ceiling, and says nothing on other ends.
func TestRestartPacer(t *testing.T) {
	var p restartPacer
	if got := p.limit(2, 8); got != 2 {
		t.Fatalf("first window %d, want 2", got)
	}
	for _, want := range []int{3, 4, 5, 6, 7, 8, 8} {
		p.done(StateReady)
		if got := p.limit(2, 8); got != want {
			t.Fatalf("after a ready restart the window is %d, want %d", got, want)
		}
	}
	p.done(StateError)
	if got := p.limit(2, 8); got != 4 {
		t.Fatalf("after a failed restart the window is %d, want 4", got)
	}
	p.done(StateDisabled)
	p.done(StateNeedsAuth)
	if got := p.limit(2, 8); got != 4 {
		t.Fatalf("a disabled or needs_auth end changed the window to %d", got)
	}
	p.done(StateBackoff)
	p.done(StateBackoff)
	if got := p.limit(2, 8); got != 2 {
		t.Fatalf("two failures from 4 left the window at %d, want restart_concurrency 2", got)
	}
	if got := p.limit(16, 8); got != 16 {
		t.Fatalf("a ceiling below restart_concurrency gave %d, want 16", got)
	}
}

// TestRegistryRestartAllWindowGrows: with restart_concurrency 1, restart_all of seven
// servers that restart fine does not go one at a time: after the first comes back ready, two
// connect at once, then more. Read from the registry's own servers.changed events, in
// order: a restart is in flight from its connecting event to its ready one. With a fixed
// window of 1 the count could never exceed 1 (the next begins in the turn that saw the
// previous ready, after its event).
func TestRegistryRestartAllWindowGrows(t *testing.T) {
	var servers []config.ServerConfig
	for i := range 7 {
		servers = append(servers, fixtureServer(t, fmt.Sprintf("s%d", i), false))
	}
	h := startRegistry(t, &config.Config{RestartConcurrency: 1, Servers: servers})
	for _, sc := range servers {
		h.waitState(t, sc.Name, StateReady)
	}
	m := h.events.mark()
	res, err := h.c.Bulk(ctxT(t), BulkRestartAll, Selection{})
	if err != nil || res.Successful != len(servers) {
		t.Fatalf("restart_all: %+v, %v", res, err)
	}
	inFlight, most, back := map[string]bool{}, 0, map[string]bool{}
	next := m
	deadline := time.Now().Add(60 * time.Second)
	for len(back) < len(servers) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d servers came back ready", len(back), len(servers))
		}
		i, _ := h.events.wait(t, next, 30*time.Second, "servers.changed", nil)
		for _, e := range h.events.snapshot(next)[:i-next+1] {
			if e.Name != "servers.changed" {
				continue
			}
			srv, _ := decode(t, e)["server"].(map[string]any)
			name, state := fmt.Sprint(srv["name"]), State(fmt.Sprint(srv["state"]))
			switch state {
			case StateConnecting:
				inFlight[name] = true
			case StateReady:
				if inFlight[name] {
					back[name] = true
				}
				delete(inFlight, name)
			default:
				t.Fatalf("%s went to %s during the restart", name, state)
			}
			most = max(most, len(inFlight))
		}
		next = i + 1
	}
	if most < 2 {
		t.Errorf("at most %d restart connected at once with restart_concurrency 1; the window did not grow", most)
	}
	if most > len(servers) {
		t.Errorf("%d restarts in flight for %d servers", most, len(servers))
	}
}
