package store

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// SetFingerprint records the hash of an upstream server's tool list. The
// write is synced: a lost fingerprint would hide a changed tool list.
func (s *Store) SetFingerprint(server, hash string) error {
	if server == "" {
		return errors.New("set fingerprint: empty server name")
	}
	return s.read(func(db *pebble.DB) error {
		if err := db.Set([]byte(prefixFingerprint+server), []byte(hash), pebble.Sync); err != nil {
			return fmt.Errorf("set fingerprint %q: %w", server, err)
		}
		return nil
	})
}

// Fingerprint returns the recorded tool-list hash of server, or an error
// wrapping ErrNotFound.
func (s *Store) Fingerprint(server string) (string, error) {
	var hash string
	err := s.read(func(db *pebble.DB) error {
		v, err := get(db, []byte(prefixFingerprint+server))
		if errors.Is(err, pebble.ErrNotFound) {
			return fmt.Errorf("fingerprint %q: %w", server, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("get fingerprint %q: %w", server, err)
		}
		hash = string(v)
		return nil
	})
	return hash, err
}
