package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// openStore opens a store in a fresh temporary directory and closes it when
// the test ends.
func openStore(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "db")
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, dir
}

// reopen closes s and opens its directory again; the new store is closed
// when the test ends.
func reopen(t *testing.T, s *Store, dir string, opts Options) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	return s2
}

func TestOpenCreatesPrivateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b", "db")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o700 {
		t.Errorf("dir mode = %o, want 700", got)
	}
	if s.events.size != DefaultEventLogSize {
		t.Errorf("default event log size = %d, want %d", s.events.size, DefaultEventLogSize)
	}
}

// settledMode is path's mode once privateFS has set it: a file pebble is creating right now
// (a compaction after the reopen) is 0644 between its open and privateFS's chmod, harmless
// inside the 0700 dir; it is looked at again, for at most two seconds, until it is private
// or gone. A file that stays open to others is reported with its mode.
func settledMode(path string, mode fs.FileMode) fs.FileMode {
	deadline := time.Now().Add(2 * time.Second)
	for mode&0o077 != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // the poll's interval
		info, err := os.Stat(path)
		if err != nil {
			return 0 // removed meanwhile
		}
		mode = info.Mode().Perm()
	}
	return mode
}

// TestFilesArePrivate checks every file pebble wrote, through a flush, a compaction and a
// reopen (WAL, sstables, MANIFEST, OPTIONS, LOCK, markers), under a umask that lets others
// read: none may be open to other users.
func TestFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	opts := Options{EventLogSize: 1000}
	s, dir := openStore(t, opts)
	for id := uint64(1); id <= 1500; id += 100 {
		batch := make([]Event, 0, 100)
		for i := range uint64(100) {
			batch = append(batch, Event{ID: id + i, Name: "servers.changed", Data: []byte(`{"n":1}`)})
		}
		if err := s.AppendEvents(batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, dir, opts)
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // an obsolete file pebble deleted meanwhile
		}
		if err != nil {
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files++
		}
		if mode := settledMode(path, info.Mode().Perm()); mode&0o077 != 0 {
			t.Errorf("%s has mode %04o: open to other users", filepath.Base(path), mode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Errorf("only %d files in the store: the walk missed them", files)
	}
}

func TestEventLogSizeOption(t *testing.T) {
	tests := []struct {
		name string
		in   int
		want int
	}{
		{"zero means default", 0, DefaultEventLogSize},
		{"negative means default", -5, DefaultEventLogSize},
		{"below minimum is raised", 10, MinEventLogSize},
		{"minimum", MinEventLogSize, MinEventLogSize},
		{"larger", 5000, 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t, Options{EventLogSize: tt.in})
			if s.events.size != tt.want {
				t.Errorf("size = %d, want %d", s.events.size, tt.want)
			}
		})
	}
}

func TestOpenTwiceFails(t *testing.T) {
	_, dir := openStore(t, Options{})
	s2, err := Open(dir, Options{})
	if err == nil {
		s2.Close()
		t.Fatal("second Open of the same dir succeeded; want a lock error")
	}
}

func TestCloseTwiceAndUseAfterClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	calls := map[string]error{
		"AppendEvents": s.AppendEvents([]Event{{ID: 1}}),
		"PutSession":   s.PutSession(Session{ID: "x"}),
	}
	_, calls["LastEventID"] = s.LastEventID()
	_, calls["EventsAfter"] = s.EventsAfter(0, 10)
	_, calls["ListSessions"] = s.ListSessions()
	_, calls["ListSecrets"] = s.ListSecrets()
	for name, err := range calls {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
		}
	}
	if got := s.DiskSize(); got != 0 {
		t.Errorf("DiskSize after Close = %d, want 0", got)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	opts := Options{EventLogSize: 1000}
	s, dir := openStore(t, opts)
	for id := uint64(1); id <= 1500; id++ {
		if err := s.appendEvent(Event{ID: id, Name: "servers.changed", Data: []byte(`{"n":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := s.EventsAfter(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	sess := Session{ID: "s1", ClientName: "claude", Status: SessionActive, ToolCalls: 3}
	if err := s.PutSession(sess); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(filepath.Dir(dir), "secrets.key")
	if err := s.OpenSecrets(keyFile); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetSecret("GITHUB_TOKEN", "ghp_secret"); err != nil {
		t.Fatal(err)
	}

	s = reopen(t, s, dir, opts)

	if last, err := s.LastEventID(); err != nil || last != 1500 {
		t.Errorf("LastEventID = %d, %v; want 1500", last, err)
	}
	after, err := s.EventsAfter(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) || after[0].ID != before[0].ID || after[len(after)-1].ID != 1500 {
		t.Errorf("events after reopen: %d from %d; before: %d from %d",
			len(after), after[0].ID, len(before), before[0].ID)
	}
	if got, err := s.GetSession("s1"); err != nil || got != sess {
		t.Errorf("GetSession = %+v, %v; want %+v", got, err, sess)
	}
	if err := s.OpenSecrets(keyFile); err != nil {
		t.Fatal(err)
	}
	if v, err := s.SecretValue("GITHUB_TOKEN"); err != nil || v != "ghp_secret" {
		t.Errorf("SecretValue = %q, %v", v, err)
	}
	// The next id continues after the reopen.
	if err := s.appendEvent(Event{ID: 1500}); err == nil {
		t.Error("appendEvent reused id 1500 after reopen")
	}
	if err := s.appendEvent(Event{ID: 1501}); err != nil {
		t.Error(err)
	}
}

func TestDiskSize(t *testing.T) {
	s, _ := openStore(t, Options{})
	before := s.DiskSize()
	if before <= 0 {
		t.Fatalf("DiskSize of a new store = %d, want > 0", before)
	}
	// Random data does not compress, so it takes its full size on disk
	// whether it sits in the WAL or in an sstable.
	big := make([]byte, 64<<10)
	for id := uint64(1); id <= 20; id++ {
		_, _ = rand.Read(big)
		if err := s.appendEvent(Event{ID: id, Data: big}); err != nil {
			t.Fatal(err)
		}
	}
	// NoSync WAL writes reach the file asynchronously; a flush puts all of
	// it into an sstable so the figure is deterministic.
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if after := s.DiskSize(); after < before+20*64<<10 {
		t.Errorf("DiskSize after writing 1.25 MiB = %d, before %d", after, before)
	}
}

func TestPebbleLogger(t *testing.T) {
	var buf bytes.Buffer
	l := pebbleLogger{l: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	l.Infof("flushed %d tables", 3)
	l.Errorf("background error: %s", "disk full")
	out := buf.String()
	if strings.Contains(out, "flushed") {
		t.Errorf("Infof visible at info level: %q", out)
	}
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "background error: disk full") {
		t.Errorf("Errorf not logged at error level: %q", out)
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ev/", "ev0"},
		{"a\xff", "b"},
		{"\xff\xff", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := string(prefixEnd(tt.in)); got != tt.want {
				t.Errorf("prefixEnd(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
