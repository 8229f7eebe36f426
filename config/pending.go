package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Pending is a config write that the daemon has made durable in its store before writing
// the file: the bytes it will write and a digest of the file they replace.
//
// Why: writing the file atomically costs two journal commits (the temporary file's sync,
// then the directory's after the rename), 2-4 ms on this kind of disk and far more while
// other processes write, while one synced record in the store's write-ahead log costs about
// 0.4 ms. So a flag change is answered once its Pending is in the store, and the file is
// written right after; on the next start, Replay finishes a write that a crash cut short.
// The file stays the one source of truth: a Pending only ever replays onto the file it was
// made against, so an edit made while the daemon was down wins over it.
type Pending struct {
	// Data is the whole new file.
	Data []byte `json:"data"`
	// Base is the SHA-256 of the file Data replaces; BaseAbsent says there was no file.
	Base       [sha256.Size]byte `json:"base"`
	BaseAbsent bool              `json:"base_absent,omitempty"`
}

// NewPending reads the file at path (through a symlink, as WriteFileAtomic writes) and
// returns the Pending that replaces it with data. It reads the file rather than trusting
// the bytes last written: the user may have edited it since (the watcher applies edits),
// and the digest must be of what is on disk for Replay to tell an edit from a lost write.
// The read comes from the page cache, tens of microseconds.
func NewPending(path string, data []byte) (Pending, error) {
	p := Pending{Data: data}
	cur, err := readTarget(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.BaseAbsent = true
	case err != nil:
		return Pending{}, fmt.Errorf("read config before writing it: %w", err)
	default:
		p.Base = sha256.Sum256(cur)
	}
	return p, nil
}

// Encode is the Pending as the store keeps it.
func (p Pending) Encode() ([]byte, error) { return json.Marshal(p) }

// DecodePending reads what Encode wrote.
func DecodePending(raw []byte) (Pending, error) {
	var p Pending
	if err := json.Unmarshal(raw, &p); err != nil {
		return Pending{}, fmt.Errorf("decode pending config write: %w", err)
	}
	return p, nil
}

// ReplayOutcome says what Replay found.
type ReplayOutcome int

const (
	// ReplayDone: the file already holds the pending write (it landed before the crash).
	ReplayDone ReplayOutcome = iota
	// ReplayWritten: the file was still the one the write replaces; Replay wrote it.
	ReplayWritten
	// ReplaySuperseded: the file is neither (edited while the daemon was down); it is left
	// as it is and the pending write is dropped.
	ReplaySuperseded
)

// Replay finishes a pending write at path: it writes p.Data (atomically, as Save does) if
// and only if the file is still the one p was made against. Either way the caller may then
// drop p.
func Replay(path string, p Pending) (ReplayOutcome, error) {
	cur, err := readTarget(path)
	absent := errors.Is(err, fs.ErrNotExist)
	if err != nil && !absent {
		return 0, fmt.Errorf("read config to replay a pending write: %w", err)
	}
	switch {
	case !absent && bytes.Equal(cur, p.Data):
		return ReplayDone, nil
	case absent != p.BaseAbsent || (!absent && sha256.Sum256(cur) != p.Base):
		return ReplaySuperseded, nil
	}
	if err := WriteFileAtomic(path, p.Data); err != nil {
		return 0, fmt.Errorf("replay pending config write: %w", err)
	}
	return ReplayWritten, nil
}

// readTarget reads the file WriteFileAtomic would replace at path (linkTarget).
func readTarget(path string) ([]byte, error) { return os.ReadFile(linkTarget(path)) }

// Prepare is what Save does before it writes: c validated and marshalled into the file's
// bytes, a config that does not validate refused with a *ValidationError.
func Prepare(c *Config) ([]byte, error) {
	if c == nil {
		return nil, errors.New("save config: nil config")
	}
	if errs := c.Validate(); len(errs) > 0 {
		return nil, &ValidationError{Errors: errs}
	}
	return Marshal(c)
}
