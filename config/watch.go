package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long the Watcher waits after the last event before reading the file:
// editors and Save produce bursts of events (create, write, rename) for one logical change.
const DefaultDebounce = 200 * time.Millisecond

// Watcher watches one config file and reports changes made by someone else.
//
// It watches the file's directory rather than the file, because an atomic save (by Save or by
// an editor) replaces the file with a new inode that a watch on the old one would never see.
//
// # Concurrency
//
// onChange runs on the Watcher's own goroutine, one call at a time. It may call Expect, but not
// Close (Close waits for the goroutine, so that would deadlock); hand the bytes to an actor and
// return. Expect and Close are safe to call from any goroutine.
type Watcher struct {
	path     string
	base     string
	fsw      *fsnotify.Watcher
	onChange func([]byte)
	logger   *slog.Logger
	debounce time.Duration
	hooks    watchHooks

	mu   sync.Mutex
	last []byte // the content the owner knows about: its own writes and what it was told
	// prev is what the file held before the owner's write of last, while that write may not
	// have landed yet (between Expect and Wrote): the file showing it is no edit either.
	prev []byte
	// writes counts Expect and Wrote calls: a look whose read of the file was overtaken by
	// one of them cannot tell an edit from content older than the owner's write.
	writes uint64

	done      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// NewWatcher starts watching path. The file's content at this moment is the baseline: onChange
// is called with the new bytes for every later change whose content differs from the last
// content the owner knows about, which is the baseline, the last content passed to onChange, or
// the last passed to Expect. A file that is removed is logged and not reported; when it comes
// back, its content is compared as usual. A nil logger discards.
//
// Create the watcher before loading the file (or Expect what was loaded) so that no edit falls
// between the two unseen.
func NewWatcher(path string, onChange func(data []byte), logger *slog.Logger) (*Watcher, error) {
	return newWatcher(path, onChange, logger, DefaultDebounce, watchHooks{})
}

// watchHooks let tests see and steer a Watcher's looks at the file; both may be nil.
type watchHooks struct {
	// checked is called after each debounced look with whether onChange was called.
	checked func(changed bool)
	// afterRead runs between a look's read of the file and its comparison: where the
	// owner's write can slip in.
	afterRead func()
}

func newWatcher(path string, onChange func([]byte), logger *slog.Logger, debounce time.Duration, hooks watchHooks) (*Watcher, error) {
	if onChange == nil {
		return nil, errors.New("watch config: nil onChange")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("watch config: %w", err)
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch config: %w", err)
	}
	if err := fsw.Add(filepath.Dir(abs)); err != nil {
		_ = fsw.Close()
		return nil, fmt.Errorf("watch config dir: %w", err)
	}
	w := &Watcher{
		path:     abs,
		base:     filepath.Base(abs),
		fsw:      fsw,
		onChange: onChange,
		logger:   logger,
		debounce: debounce,
		hooks:    hooks,
		done:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	// Read the baseline after the watch is in place, so a write in between is not lost: it
	// either is the baseline or produces an event.
	if data, err := os.ReadFile(abs); err == nil {
		w.last = data
	}
	go w.run()
	return w, nil
}

// Expect tells the watcher about content the proxy itself is about to write, so the resulting
// events are not reported; call Wrote with the same bytes once the write has landed. Until
// then the content before it is the owner's too: a look at the file triggered by an earlier
// write (the debounce runs out while this write is still being synced) finds the old bytes,
// and reporting them as an edit would apply the old config over the change being saved (a
// flag change 200 ms after another was undone that way).
func (w *Watcher) Expect(data []byte) {
	w.mu.Lock()
	if w.prev == nil {
		w.prev = w.last
	}
	w.last = bytes.Clone(data)
	w.writes++
	w.mu.Unlock()
}

// Wrote tells the watcher that the write of data announced by Expect has landed (or failed):
// from now on the file's earlier content is an edit like any other.
func (w *Watcher) Wrote(data []byte) {
	w.mu.Lock()
	if bytes.Equal(data, w.last) {
		w.prev = nil
	}
	w.writes++
	w.mu.Unlock()
}

// Close stops watching and waits for the watcher's goroutine to end; no onChange call is running
// or will start once it returns. It is safe to call more than once.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		close(w.done)
		w.closeErr = w.fsw.Close()
		<-w.stopped
	})
	return w.closeErr
}

func (w *Watcher) run() {
	defer close(w.stopped)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			// Chmod alone does not change the content; everything else on our name might.
			if filepath.Base(ev.Name) != w.base || ev.Op == fsnotify.Chmod {
				continue
			}
			timer.Reset(w.debounce)
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.logger.Warn("config watcher error", "path", w.path, "err", err)
		case <-timer.C:
			select {
			case <-w.done: // Close won the race with the timer: report nothing more.
				return
			default:
			}
			if w.check() {
				timer.Reset(w.debounce)
			}
		}
	}
}

// check reads the file and reports it if its content is new to the owner. It answers true
// when the owner wrote while the file was being read: what was read may then be the content
// from before that write (read before Expect, compared after Wrote, it would look like an
// edit and undo the owner's change), so nothing is reported and the caller looks again.
func (w *Watcher) check() (again bool) {
	w.mu.Lock()
	writes := w.writes
	w.mu.Unlock()
	data, err := os.ReadFile(w.path)
	if w.hooks.afterRead != nil {
		w.hooks.afterRead()
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			w.logger.Warn("config file removed; keeping the running config", "path", w.path)
		} else {
			w.logger.Warn("read config file", "path", w.path, "err", err)
		}
		if w.hooks.checked != nil {
			w.hooks.checked(false)
		}
		return false
	}
	w.mu.Lock()
	if w.writes != writes {
		w.mu.Unlock()
		if w.hooks.checked != nil {
			w.hooks.checked(false)
		}
		return true
	}
	changed := !bytes.Equal(data, w.last) && (w.prev == nil || !bytes.Equal(data, w.prev))
	if changed || bytes.Equal(data, w.last) {
		w.last, w.prev = data, nil // an edit, or the owner's write has landed
	}
	w.mu.Unlock()
	if changed {
		w.logger.Debug("config file changed", "path", w.path)
		w.onChange(data)
	}
	if w.hooks.checked != nil {
		w.hooks.checked(changed)
	}
	return false
}
