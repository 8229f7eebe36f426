package test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/config"
)

// TestPendingConfigWriteReplayedAtStart: a flag change is answered once it is a synced
// record in the store, before the file is written (actors' runSaver). A crash between the
// two leaves the record, which the next start replays onto the file it was made against;
// a file edited while the daemon was down wins and the record is dropped. The crash is
// staged by writing the record into the stopped daemon's store, as the saver does.
func TestPendingConfigWriteReplayedAtStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := startProxyIn(t, dir, servers(stdioFixture(t, "a"), stdioFixture(t, "b")))
	p.waitState("a", 20*time.Second, actors.StateReady)
	p.Stop()
	path := filepath.Join(dir, config.FileName)

	// stage writes the pending write of the file with set applied, as of the file now.
	stage := func(set func(c *config.Config)) []byte {
		t.Helper()
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		set(cfg)
		data, err := config.Prepare(cfg)
		if err != nil {
			t.Fatal(err)
		}
		pending, err := config.NewPending(path, data)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := pending.Encode()
		if err != nil {
			t.Fatal(err)
		}
		withStore(t, dir, func(st *store.Store) {
			if err := st.SetConfigPending(raw); err != nil {
				t.Fatal(err)
			}
		})
		return data
	}
	disable := func(name string) func(c *config.Config) {
		return func(c *config.Config) {
			for i := range c.Servers {
				if c.Servers[i].Name == name {
					off := false
					c.Servers[i].Enabled = &off
				}
			}
		}
	}
	noPending := func() {
		t.Helper()
		withStore(t, dir, func(st *store.Store) {
			if _, err := st.ConfigPending(); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the pending write is still in the store after a start: %v", err)
			}
		})
	}

	// Answered, then the crash: the file is still the old one.
	want := stage(disable("a"))
	p = startProxyIn(t, dir, nil)
	if s := p.server("a"); s.Enabled || s.State != actors.StateDisabled {
		t.Errorf("after the replay, a = enabled %v state %s, want disabled", s.Enabled, s.State)
	}
	p.waitState("b", 20*time.Second, actors.StateReady)
	p.Stop()
	if data, _ := os.ReadFile(path); !bytes.Equal(data, want) {
		t.Errorf("the file after the replay is not the pending write:\n%s", data)
	}
	noPending()

	// Answered, then the file edited while the daemon was down: the edit wins.
	stage(disable("b"))
	edited, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited = bytes.Replace(edited, []byte("{"), []byte("{\n  \"tools_limit\": 7,"), 1)
	if err := os.WriteFile(path, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	p = startProxyIn(t, dir, nil)
	if s := p.waitState("b", 20*time.Second, actors.StateReady); !s.Enabled {
		t.Errorf("b is disabled: the pending write overrode the edited file")
	}
	p.Stop()
	if data, _ := os.ReadFile(path); !bytes.Equal(data, edited) {
		t.Errorf("the edited file was rewritten:\n%s", data)
	}
	noPending()
}

// withStore opens the store of a stopped daemon's data dir, with its secrets key, for fn.
func withStore(t *testing.T, dir string, fn func(st *store.Store)) {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.OpenSecrets(filepath.Join(dir, "secrets.key")); err != nil {
		t.Fatal(err)
	}
	fn(st)
}
