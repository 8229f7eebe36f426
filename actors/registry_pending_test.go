package actors

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/config"
)

// TestRegistryAnswersOnceTheChangeIsPending: with a store for pending writes, a disable is
// answered, and its event published, once the change is a synced record in the store, while
// the file write is still held back (BeforeSave blocks); the record replays onto the file as
// it was, and it is cleared once the file holds the change.
func TestRegistryAnswersOnceTheChangeIsPending(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.OpenSecrets(filepath.Join(dir, "secrets.key")); err != nil {
		t.Fatal(err)
	}
	a := fixtureServer(t, "a", false)
	entered, gate := make(chan struct{}, 1), make(chan struct{})
	armed := make(chan struct{})
	h := startRegistry(t, &config.Config{Servers: []config.ServerConfig{a}}, func(h *regHarness, o *RegistryOptions) {
		o.Pending = st
		o.BeforeSave = func([]byte) {
			select {
			case <-armed:
			default:
				return
			}
			select {
			case entered <- struct{}{}:
				<-gate
			default:
			}
		}
	})
	h.waitState(t, "a", StateReady)
	before, err := os.ReadFile(h.path)
	if err != nil {
		t.Fatal(err)
	}
	m := h.events.mark()
	close(armed)
	done := make(chan error, 1)
	go func() {
		_, err := h.c.SetEnabled(ctxT(t), "a", false)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(gate)
		t.Fatal("the disable was not answered while its file write was held back")
	}
	<-entered // the file write is under way and held
	h.events.wait(t, m, 5*time.Second, "servers.changed", func(d payload) bool { return d.str("reason") == ReasonDisabled })

	raw, err := st.ConfigPending()
	if err != nil {
		t.Fatalf("no pending write while the file is held back: %v", err)
	}
	p, err := config.DecodePending(raw)
	if err != nil {
		t.Fatal(err)
	}
	if now, _ := os.ReadFile(h.path); !bytes.Equal(now, before) {
		t.Fatal("the file changed while its write was held back")
	}
	// What a crash now would leave: the pending write replays onto the old file.
	replayed := filepath.Join(dir, "replayed.json")
	if err := os.WriteFile(replayed, before, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := config.Replay(replayed, p); err != nil || out != config.ReplayWritten {
		t.Fatalf("replay onto the old file: %v, %v", out, err)
	}
	cfg, err := config.Load(replayed)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Servers) != 1 || cfg.Servers[0].IsEnabled() {
		t.Fatalf("the replayed file does not hold the disable: %+v", cfg.Servers)
	}

	close(gate)
	waitFor(t, "the file holds the change and the pending write is cleared", func() bool {
		cur, err := config.Load(h.path)
		if err != nil || len(cur.Servers) != 1 || cur.Servers[0].IsEnabled() {
			return false
		}
		_, err = st.ConfigPending()
		return errors.Is(err, store.ErrNotFound)
	})
}

// TestOnlyFlagsIgnoresPinWrites: a batch of the saver that holds a write of pins alone (the
// pins of a server's first connection) and a disable is still answered once the disable is
// pending; an apply in the batch makes it wait for the file.
func TestOnlyFlagsIgnoresPinWrites(t *testing.T) {
	cfg := &config.Config{}
	pins := saveJob{pins: []store.PinChange{{}}}
	disable := saveJob{cfg: cfg, flags: true}
	apply := saveJob{cfg: cfg}
	if !onlyFlags([]saveJob{pins, disable}) {
		t.Error("pins and a disable: not answered once pending")
	}
	if onlyFlags([]saveJob{pins, disable, apply}) {
		t.Error("pins, a disable and an apply: answered before the apply's file")
	}
}
