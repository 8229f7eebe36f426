package store

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// oauthADPrefix starts the additional data of a sealed OAuth record; the record's key
// follows, so a record moved to another server does not decrypt.
const oauthADPrefix = "mcpproxy/oauth/v1\x00"

// SetOAuth stores value (an OAuth record: a server's tokens, a registered client) under
// key, sealed like a secret with the secrets key. The write is synced.
func (s *Store) SetOAuth(key string, value []byte) error {
	s.secretsMu.Lock()
	k := s.key
	s.secretsMu.Unlock()
	if k == nil {
		return fmt.Errorf("set oauth record: %w", ErrSecretsNotOpen)
	}
	rec := secretRecord{CreatedAt: time.Now().UTC(), KeyID: k.id}
	rec.UpdatedAt = rec.CreatedAt
	rec.Nonce = make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(rec.Nonce); err != nil {
		return fmt.Errorf("set oauth record: %w", err)
	}
	rec.Ciphertext = k.aead.Seal(nil, rec.Nonce, value, []byte(oauthADPrefix+key))
	v, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("set oauth record: %w", err)
	}
	return s.read(func(db *pebble.DB) error {
		if err := db.Set([]byte(prefixOAuth+key), v, pebble.Sync); err != nil {
			return fmt.Errorf("set oauth record: %w", err)
		}
		return nil
	})
}

// OAuth returns the record under key, or an error wrapping ErrNotFound.
func (s *Store) OAuth(key string) ([]byte, error) {
	s.secretsMu.Lock()
	k := s.key
	s.secretsMu.Unlock()
	if k == nil {
		return nil, fmt.Errorf("oauth record: %w", ErrSecretsNotOpen)
	}
	var out []byte
	err := s.read(func(db *pebble.DB) error {
		v, err := get(db, []byte(prefixOAuth+key))
		if errors.Is(err, pebble.ErrNotFound) {
			return fmt.Errorf("oauth record: %w", ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("read oauth record: %w", err)
		}
		var rec secretRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode oauth record: %w", err)
		}
		if rec.KeyID != k.id {
			return fmt.Errorf("oauth record: %w", ErrWrongKey)
		}
		if len(rec.Nonce) != k.aead.NonceSize() {
			return fmt.Errorf("oauth record: %w", ErrSecretCorrupt)
		}
		out, err = k.aead.Open(nil, rec.Nonce, rec.Ciphertext, []byte(oauthADPrefix+key))
		if err != nil {
			return fmt.Errorf("oauth record: %w", ErrSecretCorrupt)
		}
		return nil
	})
	return out, err
}

// DeleteOAuth deletes the record under key; a missing one is no error. Synced.
func (s *Store) DeleteOAuth(key string) error {
	return s.read(func(db *pebble.DB) error {
		if err := db.Delete([]byte(prefixOAuth+key), pebble.Sync); err != nil {
			return fmt.Errorf("delete oauth record: %w", err)
		}
		return nil
	})
}
