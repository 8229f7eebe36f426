package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Session statuses.
const (
	SessionActive = "active"
	SessionClosed = "closed"
)

// Session is one MCP client session of the proxy's own /mcp endpoint.
type Session struct {
	ID            string    `json:"id"`
	ClientName    string    `json:"client_name"`
	ClientVersion string    `json:"client_version"`
	Status        string    `json:"status"` // SessionActive or SessionClosed
	StartedAt     time.Time `json:"started_at"`
	LastActivity  time.Time `json:"last_activity"`
	ToolCalls     int64     `json:"tool_calls"`
	Endpoint      string    `json:"endpoint,omitempty"`
	// Credential names what the session was opened with: "admin" (the API key), "none"
	// (no key needed), or an agent token's name.
	Credential string `json:"credential,omitempty"`
}

// PutSession creates or replaces the session with sess.ID. The write is
// synced, so a session's record survives a crash of the daemon.
func (s *Store) PutSession(sess Session) error {
	if sess.ID == "" {
		return errors.New("put session: empty id")
	}
	v, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("put session %q: %w", sess.ID, err)
	}
	return s.read(func(db *pebble.DB) error {
		// Synced: session records are few (start, close, a periodic flush) and must
		// survive a crash.
		if err := db.Set([]byte(prefixSession+sess.ID), v, pebble.Sync); err != nil {
			return fmt.Errorf("put session %q: %w", sess.ID, err)
		}
		return nil
	})
}

// GetSession returns the session with the given id, or an error wrapping
// ErrNotFound.
func (s *Store) GetSession(id string) (Session, error) {
	var sess Session
	err := s.read(func(db *pebble.DB) error {
		v, err := get(db, []byte(prefixSession+id))
		if errors.Is(err, pebble.ErrNotFound) {
			return fmt.Errorf("session %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("get session %q: %w", id, err)
		}
		if err := json.Unmarshal(v, &sess); err != nil {
			return fmt.Errorf("decode session %q: %w", id, err)
		}
		return nil
	})
	return sess, err
}

// ListSessions returns all stored sessions, newest StartedAt first (ties by
// id, so the order is stable).
func (s *Store) ListSessions() ([]Session, error) {
	var out []Session
	err := s.read(func(db *pebble.DB) error {
		return scanPrefix(db, prefixSession, func(key, value []byte) error {
			var sess Session
			if err := json.Unmarshal(value, &sess); err != nil {
				return fmt.Errorf("decode session %q: %w", key[len(prefixSession):], err)
			}
			out = append(out, sess)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	slices.SortFunc(out, newestFirst)
	return out, nil
}

// PruneSessions keeps the newest keep closed sessions (by StartedAt) and
// deletes the older closed ones in one batch. Active sessions are never
// deleted. keep < 0 is treated as 0.
func (s *Store) PruneSessions(keep int) error {
	sessions, err := s.ListSessions()
	if err != nil {
		return fmt.Errorf("prune sessions: %w", err)
	}
	keep = max(keep, 0)
	var doomed []string
	for _, sess := range sessions { // newest first
		if sess.Status != SessionClosed {
			continue
		}
		if keep > 0 {
			keep--
			continue
		}
		doomed = append(doomed, sess.ID)
	}
	if len(doomed) == 0 {
		return nil
	}
	return s.read(func(db *pebble.DB) error {
		b := db.NewBatch()
		defer b.Close()
		for _, id := range doomed {
			if err := b.Delete([]byte(prefixSession+id), nil); err != nil {
				return fmt.Errorf("prune sessions: %w", err)
			}
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("prune sessions: %w", err)
		}
		return nil
	})
}

func newestFirst(a, b Session) int {
	if c := b.StartedAt.Compare(a.StartedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}
