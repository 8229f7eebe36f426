package actors

import (
	"testing"

	"github.com/mcpproxy/mcpproxy/actors/search"
	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/config"
)

// TestReindexHidesWhileNotReady: a server meant to be reachable that is not ready (restarting,
// failing) is hidden in the index, not removed, and comes back when ready; once it is
// disabled, quarantined or removed from the config, its tools leave the index, hidden ones
// too (ServerLen does not count them, so the removal must not depend on it).
func TestReindexHidesWhileNotReady(t *testing.T) {
	r := &registry{
		index: search.NewIndex(),
		rows:  map[string]*row{},
		pins:  map[string]map[string]store.ToolPin{"s": {"echo": {Hash: "h"}}},
	}
	rw := &row{
		cfg:   config.ServerConfig{Name: "s", Command: "fixture", Quarantined: boolPtr(false)},
		st:    upstreamStatus{State: StateReady},
		tools: []Tool{{Server: "s", Raw: "echo", Hash: "h", Description: "Echo the text back"}},
	}
	r.rows["s"] = rw
	state := func(st State) {
		t.Helper()
		rw.st.State = st
		r.reindex(nil, "s")
	}
	want := func(step string, n int, hidden bool) {
		t.Helper()
		if got := r.index.ServerLen("s"); got != n || r.index.Hidden("s") != hidden {
			t.Fatalf("%s: ServerLen %d hidden %v, want %d and %v", step, got, r.index.Hidden("s"), n, hidden)
		}
	}
	state(StateReady)
	want("ready", 1, false)
	for _, st := range []State{StateConnecting, StateError, StateBackoff} {
		state(st)
		want(string(st), 0, true)
		state(StateReady)
		want("ready after "+string(st), 1, false)
	}

	state(StateConnecting)
	rw.cfg.Enabled = boolPtr(false)
	r.reindex(nil, "s")
	want("disabled while hidden", 0, false)

	rw.cfg.Enabled = nil
	state(StateReady)
	state(StateError)
	rw.cfg.Quarantined = boolPtr(true)
	r.reindex(nil, "s")
	want("quarantined while hidden", 0, false)

	rw.cfg.Quarantined = boolPtr(false)
	state(StateReady)
	state(StateConnecting)
	delete(r.rows, "s")
	r.reindex(nil, "s")
	want("removed while hidden", 0, false)
	if r.index.Len() != 0 {
		t.Errorf("index keeps %d tools with no server", r.index.Len())
	}
}
