package actors

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/mcpproxy/mcpproxy/config"
)

// TestBurstOfConnectsEndsWithARelease: the registry asks for the memory of a burst of
// connects back once it has settled (the start of 12 servers, a restart_all of them), and
// not for a single restart.
func TestBurstOfConnectsEndsWithARelease(t *testing.T) {
	const n = releaseAfterConnects + 2
	cfg := &config.Config{}
	for i := range n {
		cfg.Servers = append(cfg.Servers, fixtureServer(t, fmt.Sprintf("s%02d", i), false))
	}
	var released atomic.Int32
	h := startRegistry(t, cfg, func(_ *regHarness, o *RegistryOptions) {
		o.ReleaseMemory = func() { released.Add(1) }
	})
	allReady := func() {
		t.Helper()
		for i := range n {
			h.waitState(t, fmt.Sprintf("s%02d", i), StateReady)
		}
	}
	allReady()
	waitFor(t, "the release after the start", func() bool { return released.Load() == 1 })

	if _, err := h.c.Restart(ctxT(t), "s00"); err != nil {
		t.Fatal(err)
	}
	h.waitState(t, "s00", StateReady)
	if _, err := h.c.Servers(ctxT(t)); err != nil { // the registry has handled all before
		t.Fatal(err)
	}
	if got := released.Load(); got != 1 {
		t.Fatalf("releases after one restart: %d, want still 1", got)
	}

	if _, err := h.c.Bulk(ctxT(t), BulkRestartAll, Selection{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the release after restart_all", func() bool { return released.Load() == 2 })
	allReady()
}
