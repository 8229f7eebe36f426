package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReplay: a pending write replays onto the file it was made against (and onto a missing
// file when it was made against none), is already done when the file holds it, and is
// superseded, leaving the file alone, when the file is anything else.
func TestReplay(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	old, next, edited := []byte(`{"old": 1}`), []byte(`{"new": 2}`), []byte(`{"edited": 3}`)
	write := func(data []byte) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	replay := func(p Pending, want ReplayOutcome, file []byte) {
		t.Helper()
		raw, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if p, err = DecodePending(raw); err != nil {
			t.Fatal(err)
		}
		got, err := Replay(path, p)
		if err != nil || got != want {
			t.Fatalf("Replay = %v, %v; want %v", got, err, want)
		}
		data, err := os.ReadFile(path)
		if err != nil || string(data) != string(file) {
			t.Fatalf("file after replay = %q (%v), want %q", data, err, file)
		}
	}

	write(old)
	p, err := NewPending(path, next)
	if err != nil {
		t.Fatal(err)
	}
	replay(p, ReplayWritten, next) // the crash came before the file was written
	replay(p, ReplayDone, next)    // ... or after

	write(old)
	write(edited) // edited while the daemon was down
	replay(p, ReplaySuperseded, edited)

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	// Made against a file that is gone: not replayed, and no file appears.
	if got, err := Replay(path, p); err != nil || got != ReplaySuperseded {
		t.Fatalf("Replay onto a removed file = %v, %v", got, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a superseded replay created the file: %v", err)
	}
}

// TestReplayOntoNoFileAndThroughALink: a write made when there was no file replays while
// there still is none; through a symlink, the file it points to is compared and replaced
// and the link kept.
func TestReplayOntoNoFileAndThroughALink(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	p, err := NewPending(path, []byte(`{"a": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	if !p.BaseAbsent {
		t.Fatal("a pending write over no file does not say so")
	}
	if got, err := Replay(path, p); err != nil || got != ReplayWritten {
		t.Fatalf("Replay = %v, %v", got, err)
	}

	target := filepath.Join(dir, "real.json")
	link := filepath.Join(dir, "link.json")
	if err := os.WriteFile(target, []byte(`{"old": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if p, err = NewPending(link, []byte(`{"b": 2}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := Replay(link, p); err != nil || got != ReplayWritten {
		t.Fatalf("Replay through the link = %v, %v", got, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced: %v", err)
	}
	if data, _ := os.ReadFile(target); string(data) != `{"b": 2}` {
		t.Fatalf("target = %q", data)
	}
}
