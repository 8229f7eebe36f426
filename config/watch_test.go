package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// waitTimeout bounds every wait in these tests; events normally arrive within the debounce.
const waitTimeout = 10 * time.Second

// watchHarness runs a Watcher with a short debounce and records what it reports.
type watchHarness struct {
	w       *Watcher
	path    string
	changes chan []byte
	checks  chan bool
}

func newWatchHarness(t *testing.T, initial []byte) *watchHarness {
	t.Helper()
	dir := t.TempDir()
	h := &watchHarness{
		path:    filepath.Join(dir, FileName),
		changes: make(chan []byte, 16),
		checks:  make(chan bool, 16),
	}
	if initial != nil {
		if err := os.WriteFile(h.path, initial, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w, err := newWatcher(h.path, func(b []byte) { h.changes <- b }, nil, 100*time.Millisecond, watchHooks{checked: func(changed bool) { h.checks <- changed }})
	if err != nil {
		t.Fatal(err)
	}
	h.w = w
	return h
}

func (h *watchHarness) nextChange(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-h.changes:
		return b
	case <-time.After(waitTimeout):
		t.Fatal("no change reported")
		return nil
	}
}

// nextCheck waits for the watcher to have looked at the file once more.
func (h *watchHarness) nextCheck(t *testing.T) bool {
	t.Helper()
	select {
	case c := <-h.checks:
		return c
	case <-time.After(waitTimeout):
		t.Fatal("the watcher never looked at the file")
		return false
	}
}

func TestWatcherReportsExternalEdit(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := newWatchHarness(t, []byte(`{"mcpServers": []}`))
	defer h.w.Close()

	edited := []byte(`{"mcpServers": [{"name": "a", "command": "c"}]}`)
	if err := os.WriteFile(h.path, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := h.nextChange(t); string(got) != string(edited) {
		t.Errorf("reported %q, want %q", got, edited)
	}
}

func TestWatcherSeesAtomicRename(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := newWatchHarness(t, []byte(`{}`))
	defer h.w.Close()

	// The way editors (and Save) replace a file: write elsewhere, rename over it.
	edited := []byte(`{"tools_limit": 3}`)
	tmp := filepath.Join(filepath.Dir(h.path), "editor.swp")
	if err := os.WriteFile(tmp, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, h.path); err != nil {
		t.Fatal(err)
	}
	if got := h.nextChange(t); string(got) != string(edited) {
		t.Errorf("reported %q, want %q", got, edited)
	}
}

func TestWatcherIgnoresExpectedWrite(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := newWatchHarness(t, []byte(`{}`))
	defer h.w.Close()

	own := &Config{Servers: []ServerConfig{{Name: "own", Command: "c"}}}
	data, err := Marshal(own)
	if err != nil {
		t.Fatal(err)
	}
	h.w.Expect(data)
	if _, err := Save(h.path, own); err != nil {
		t.Fatal(err)
	}
	if changed := h.nextCheck(t); changed {
		t.Fatalf("the proxy's own write was reported: %s", <-h.changes)
	}

	// An external edit after it is still reported, and it is the first report.
	external := []byte(`{"mcpServers": [{"name": "ext", "command": "c"}]}`)
	if err := os.WriteFile(h.path, external, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := h.nextChange(t); string(got) != string(external) {
		t.Errorf("reported %q, want the external edit %q", got, external)
	}
}

// TestWatcherOldContentDuringOwnWrite: a look at the file that runs while the proxy's next
// write is announced (Expect) but has not landed finds the content before it; that is no edit
// (reporting it applied the old config over the change being saved). Once the write is over
// (Wrote), the old content is an edit like any other.
func TestWatcherOldContentDuringOwnWrite(t *testing.T) {
	defer goleak.VerifyNone(t)
	first := []byte(`{"mcpServers": [{"name": "a", "command": "c", "enabled": false}]}`)
	h := newWatchHarness(t, first)
	defer h.w.Close()

	next := []byte(`{"mcpServers": [{"name": "a", "command": "c", "enabled": true}]}`)
	h.w.Expect(next)
	// The debounce of an earlier write runs out now: the file still holds the old bytes.
	if err := os.WriteFile(h.path, first, 0o600); err != nil {
		t.Fatal(err)
	}
	if changed := h.nextCheck(t); changed {
		t.Fatalf("the content before the proxy's pending write was reported: %s", <-h.changes)
	}
	if err := os.WriteFile(h.path, next, 0o600); err != nil {
		t.Fatal(err)
	}
	if changed := h.nextCheck(t); changed {
		t.Fatalf("the proxy's own write was reported: %s", <-h.changes)
	}
	h.w.Wrote(next)

	// Written back by someone else afterwards, the old content is an edit.
	if err := os.WriteFile(h.path, first, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := h.nextChange(t); string(got) != string(first) {
		t.Errorf("reported %q, want %q", got, first)
	}
}

// TestWatcherReadOvertakenByOwnWrite: a look that read the file before the proxy's whole
// write (Expect, the write, Wrote) and compares after it must not report what it read: that
// is the content the proxy just replaced, and applying it would undo the proxy's change.
func TestWatcherReadOvertakenByOwnWrite(t *testing.T) {
	defer goleak.VerifyNone(t)
	first := []byte(`{"mcpServers": [{"name": "a", "command": "c", "enabled": false}]}`)
	next := []byte(`{"mcpServers": [{"name": "a", "command": "c", "enabled": true}]}`)
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, first, 0o600); err != nil {
		t.Fatal(err)
	}
	changes, checks := make(chan []byte, 16), make(chan bool, 16)
	// The watcher reaches its hook only after the test has handed it over (the channel),
	// so the hook's use of w is ordered after its assignment.
	self := make(chan *Watcher, 1)
	overtaken := false
	// The first look reads first; before it compares, the proxy writes next in full.
	afterRead := func() {
		if overtaken {
			return
		}
		overtaken = true
		w := <-self
		w.Expect(next)
		if err := os.WriteFile(path, next, 0o600); err != nil {
			t.Error(err)
		}
		w.Wrote(next)
	}
	w, err := newWatcher(path, func(b []byte) { changes <- b }, nil, 100*time.Millisecond,
		watchHooks{checked: func(changed bool) { checks <- changed }, afterRead: afterRead})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	self <- w
	// Someone touches the file with the same bytes, which starts a look.
	if err := os.WriteFile(path, first, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the overtaken look, then the one the proxy's write causes
		select {
		case changed := <-checks:
			if changed {
				t.Fatalf("reported %s, the content the proxy's write replaced", <-changes)
			}
		case <-time.After(waitTimeout):
			t.Fatal("the watcher never looked at the file")
		}
	}
}

func TestWatcherSameContentAndRemoval(t *testing.T) {
	defer goleak.VerifyNone(t)
	content := []byte(`{"listen": "127.0.0.1:1"}`)
	h := newWatchHarness(t, content)
	defer h.w.Close()

	// Rewriting identical bytes (a touch, an editor's save without changes) is not a change.
	if err := os.WriteFile(h.path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if h.nextCheck(t) {
		t.Fatal("identical content reported as a change")
	}
	// Removal is not reported; the file coming back with new content is.
	if err := os.Remove(h.path); err != nil {
		t.Fatal(err)
	}
	if h.nextCheck(t) {
		t.Fatal("removal reported as a change")
	}
	back := []byte(`{"listen": "127.0.0.1:2"}`)
	if err := os.WriteFile(h.path, back, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := h.nextChange(t); string(got) != string(back) {
		t.Errorf("reported %q, want %q", got, back)
	}
	// Other files in the directory are none of its business.
	if err := os.WriteFile(filepath.Join(filepath.Dir(h.path), "other.json"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.path, content, 0o600); err != nil { // a marker change to wait for
		t.Fatal(err)
	}
	for {
		if h.nextCheck(t) {
			break
		}
	}
	if got := <-h.changes; string(got) != string(content) {
		t.Errorf("reported %q, want %q", got, content)
	}
	select {
	case extra := <-h.changes:
		t.Errorf("unexpected extra report %q", extra)
	default:
	}
}

func TestWatcherCloseLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	w, err := NewWatcher(filepath.Join(dir, FileName), func([]byte) {}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestNewWatcherErrors(t *testing.T) {
	defer goleak.VerifyNone(t)
	if _, err := NewWatcher(filepath.Join(t.TempDir(), "missing-dir", FileName), func([]byte) {}, nil); err == nil {
		t.Error("watching a file in a missing directory did not fail")
	}
	if _, err := NewWatcher(filepath.Join(t.TempDir(), FileName), nil, nil); err == nil {
		t.Error("a nil onChange was accepted")
	}
}
