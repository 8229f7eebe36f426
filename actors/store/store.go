// Package store is the daemon's pebble-backed store for everything that is
// not configuration: the recent event log (for SSE Last-Event-ID replay), MCP
// client sessions, the activity log (activity.go), secrets (encrypted at rest with
// AES-256-GCM) and the tool pins of tool-level trust. Server definitions and their flags live in the config
// file, not here; the store only holds, sealed, the one config write that has been answered
// but may not be in the file yet (pending.go), until the file has it.
//
// # Key layout
//
// All keys share one pebble keyspace and are separated by prefix:
//
//	ev/<id: 8-byte big-endian uint64>  event (binary: flags, time, name, data)
//	meta/lastEventID                   highest event id ever appended (8-byte big-endian)
//	se/<session id>                    Session as JSON
//	sc/<secret name>                   secret as JSON: times, key id, nonce, AES-256-GCM ciphertext
//	oa/<kind>/<name>                   sealed OAuth record (oauth.go): tokens of a server, a
//	                                   registered client of an authorization server
//	tp/<server name>                   the server's tool pins (pins.go): the approved
//	                                   definition and SHA-256 of each tool, by tool name
//	ac/<id: 8-byte big-endian uint64>  activity record (activity.go), as actors/activity encodes it
//	meta/lastActivityID                highest activity id ever written (8-byte big-endian)
//	tk/<token name>                    agent token as JSON (tokens.go): scope, times and the
//	                                   token's SHA-256, never the token
//	cf/pending                         sealed pending config write (pending.go): the whole new
//	                                   file and the SHA-256 of the one it replaces
//
// Big-endian event ids make byte order equal numeric order, so an iterator
// walks events oldest first. meta/lastEventID is written in the same batch as
// each event, so the next id survives a restart even after the event log was
// trimmed. The log keeps the newest EventLogSize events; the older ones are
// deleted with one range deletion per EventLogSize/10 appends, and readers
// never see more than EventLogSize events in between.
//
// Secret values are sealed with AES-256-GCM under a 32-byte key kept in a
// separate key file (see OpenSecrets), each with a fresh random nonce and
// with the secret's name as additional data, so a ciphertext copied to
// another name does not decrypt.
//
// # Usage
//
//	s, err := store.Open(filepath.Join(dataDir, "db"), store.Options{Logger: logger})
//	...
//	defer s.Close() // after every actor using s has stopped
//	err = s.OpenSecrets(filepath.Join(dataDir, "secrets.key"))
//	last, _ := s.LastEventID()
//	err = s.AppendEvents([]store.Event{{ID: last + 1, Name: "servers.changed", Data: data, Time: time.Now()}})
//	missed, err := s.EventsAfter(lastEventIDFromClient, 1000)
//
// # Durability
//
// Events, sessions and secrets are written with pebble.Sync:
// pebble keeps NoSync writes in its own WAL buffer until a block fills, so a
// kill -9 would lose them (and reuse event ids). Writers that produce many
// records batch them (AppendEvents) so that one fsync covers many.
//
// # Concurrency
//
// All methods may be called from many goroutines at once; pebble itself is
// safe for concurrent reads, writes and iteration, and the few read-modify-write
// sequences here (event trimming, secret updates) are serialised by the Store.
// The event log assumes a single writer (the hub actor) that assigns
// increasing ids; AppendEvent rejects an id that does not increase.
//
// The Store is opened once by the daemon and closed last: its owner calls
// Close only after every actor that uses it has stopped. Close waits for calls
// that are in progress, and calls made after Close return ErrClosed rather
// than panicking inside pebble, but a caller should not depend on that.
package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrNotFound is returned (wrapped) when a session or secret
// does not exist.
var ErrNotFound = errors.New("not found")

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("store closed")

// Key prefixes and fixed keys; see the package documentation.
const (
	prefixEvent    = "ev/"
	prefixSession  = "se/"
	prefixSecret   = "sc/"
	prefixOAuth    = "oa/"
	prefixPins     = "tp/"
	prefixToken    = "tk/"
	keyLastEventID = "meta/lastEventID"
	keyEventsClean = "meta/eventsClean"
)

// Event log size bounds.
const (
	DefaultEventLogSize = 2000
	MinEventLogSize     = 1000
)

// slowDiskThreshold is how long a file operation may take before the store
// logs a warning; it is pebble's default.
const slowDiskThreshold = 5 * time.Second

// Options configures Open. The zero value is usable: Logger defaults to a
// logger that discards everything, and EventLogSize defaults to
// DefaultEventLogSize (2000); a positive value below MinEventLogSize (1000)
// is raised to it.
type Options struct {
	// Logger receives pebble's messages: Infof at debug level, Errorf at
	// error level, Fatalf at error level before the process exits.
	Logger *slog.Logger
	// EventLogSize is how many of the newest events the log keeps.
	EventLogSize int
}

// Store is the daemon's persistent store. See the package documentation for
// the concurrency rules.
type Store struct {
	dir    string
	logger *slog.Logger

	// mu is held for reading by every operation and for writing by Close,
	// so Close never runs while pebble is in use.
	mu       sync.RWMutex
	db       *pebble.DB
	fsCloser io.Closer
	closed   bool

	events eventLog
	// secretsMu serialises read-modify-write of secret records and the
	// loading of the key.
	secretsMu sync.Mutex
	key       *secretKey
	// secretsGen counts the changes of secret values, so that a reader that keeps something
	// derived from them (the activity log's scrubber) knows when to build it again.
	secretsGen atomic.Uint64

	// oauth is the read cache of the OAuth records (oauth.go).
	oauth oauthCache
}

// Open opens (or creates) the store in dir. dir is created with mode 0700 if
// it is missing. Only one Store may have dir open at a time, in this process
// or any other.
func Open(dir string, opts Options) (*Store, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	size := opts.EventLogSize
	switch {
	case size <= 0:
		size = DefaultEventLogSize
	case size < MinEventLogSize:
		size = MinEventLogSize
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create store dir: %w", err)
	}
	// The disk-health-checking file system is what pebble would install by
	// default, but pebble only stops its ticker goroutine when a DB closes,
	// not when Open fails (a held lock, say). Owning it here lets a failed
	// Open release it too.
	// Under the health checks, privateFS keeps every file pebble writes 0600 (privatefs.go).
	healthFS, fsCloser := vfs.WithDiskHealthChecks(privateFS{vfs.Default}, slowDiskThreshold, nil,
		func(info vfs.DiskSlowInfo) {
			logger.Warn("slow disk operation in store", "component", "pebble",
				"path", info.Path, "op", info.OpType.String(), "duration", info.Duration)
		})
	db, err := pebble.Open(dir, &pebble.Options{
		FS:                 healthFS,
		CacheSize:          4 << 20,
		MemTableSize:       2 << 20,
		MaxOpenFiles:       64,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{l: logger},
	})
	if err != nil {
		_ = fsCloser.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	s := &Store{dir: dir, logger: logger, db: db, fsCloser: fsCloser}
	if err := s.events.load(db, size); err != nil {
		_ = db.Close()
		_ = fsCloser.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	return s, nil
}

// Close closes the store. It waits for calls in progress; later calls return
// ErrClosed. Closing twice is allowed: the second call returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.db.Close()
	// pebble does not close a file system it was given; see Open.
	_ = s.fsCloser.Close()
	if err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// DiskSize returns the bytes the store uses on disk (sstables, WAL, manifest
// and other files in its directory). It returns 0 after Close.
func (s *Store) DiskSize() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0
	}
	// Walking the directory counts every file pebble keeps (including the
	// WAL and OPTIONS files), which is what "size on disk" means to a user;
	// the store is small, so the walk is cheap.
	var total int64
	_ = filepath.WalkDir(s.dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			// Files vanish while pebble compacts; skip them.
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}

// read runs fn with the database while holding the read lock.
func (s *Store) read(fn func(db *pebble.DB) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return fn(s.db)
}

// get returns a copy of the value stored at key, or pebble.ErrNotFound.
func get(db *pebble.DB, key []byte) ([]byte, error) {
	v, closer, err := db.Get(key)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), v...)
	if err := closer.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// scanPrefix calls fn for every key with the given prefix, in key order.
// key and value are only valid during the call.
func scanPrefix(db *pebble.DB, prefix string, fn func(key, value []byte) error) (err error) {
	var opts pebble.IterOptions
	// An empty prefix means every key. It must be a nil bound: pebble's
	// race-build seek check indexes the first byte of a non-nil bound.
	if prefix != "" {
		opts.LowerBound = []byte(prefix)
		opts.UpperBound = prefixEnd(prefix)
	}
	it, err := db.NewIter(&opts)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		if err := fn(it.Key(), v); err != nil {
			return err
		}
	}
	return it.Error()
}

// prefixEnd returns the smallest key greater than every key with prefix. The
// prefixes used here end in '/', so this is the prefix with '/' -> '0'.
func prefixEnd(prefix string) []byte {
	end := []byte(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // prefix is all 0xff: no upper bound.
}

// pebbleLogger adapts *slog.Logger to pebble.Logger. Pebble's informational
// messages (compactions, flushes) are debug detail here.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf logs and exits: pebble calls it on unrecoverable corruption and
// does not expect it to return.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble", "fatal", true)
	os.Exit(1)
}
