package store

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// keyConfigPending holds the config write the daemon has made durable but may not have
// written to the file yet (config.Pending, encoded); pendingAD is its sealed record's
// additional data.
const (
	keyConfigPending = "cf/pending"
	pendingAD        = "mcpproxy/config-pending/v1"
)

// SetConfigPending stores value, a pending config write (config.Pending.Encode), sealed
// like a secret (the config holds the API key), in one synced write. It replaces the one
// before: each write holds the whole file.
func (s *Store) SetConfigPending(value []byte) error {
	k, err := s.secretsKey()
	if err != nil {
		return fmt.Errorf("set pending config write: %w", err)
	}
	v, err := sealRecord(k, value, []byte(pendingAD))
	if err != nil {
		return fmt.Errorf("set pending config write: %w", err)
	}
	return s.read(func(db *pebble.DB) error {
		if err := db.Set([]byte(keyConfigPending), v, pebble.Sync); err != nil {
			return fmt.Errorf("set pending config write: %w", err)
		}
		return nil
	})
}

// ConfigPending returns the pending config write, or an error wrapping ErrNotFound.
func (s *Store) ConfigPending() ([]byte, error) {
	k, err := s.secretsKey()
	if err != nil {
		return nil, fmt.Errorf("pending config write: %w", err)
	}
	var out []byte
	err = s.read(func(db *pebble.DB) error {
		v, err := get(db, []byte(keyConfigPending))
		if errors.Is(err, pebble.ErrNotFound) {
			return fmt.Errorf("pending config write: %w", ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("read pending config write: %w", err)
		}
		out, err = openRecord(k, v, []byte(pendingAD))
		if err != nil {
			return fmt.Errorf("pending config write: %w", err)
		}
		return nil
	})
	return out, err
}

// ClearConfigPending deletes the pending config write once the file holds it. The delete
// is not synced: if a crash loses it, the next start finds the file already written
// (config.ReplayDone) and drops the record then.
func (s *Store) ClearConfigPending() error {
	return s.read(func(db *pebble.DB) error {
		if err := db.Delete([]byte(keyConfigPending), pebble.NoSync); err != nil {
			return fmt.Errorf("clear pending config write: %w", err)
		}
		return nil
	})
}

// secretsKey is the key OpenSecrets loaded.
func (s *Store) secretsKey() (*secretKey, error) {
	s.secretsMu.Lock()
	k := s.key
	s.secretsMu.Unlock()
	if k == nil {
		return nil, ErrSecretsNotOpen
	}
	return k, nil
}

// sealRecord seals value with k under a fresh nonce, with ad as additional data, into the
// stored form of a secret record.
func sealRecord(k *secretKey, value, ad []byte) ([]byte, error) {
	rec := secretRecord{CreatedAt: time.Now().UTC(), KeyID: k.id}
	rec.UpdatedAt = rec.CreatedAt
	rec.Nonce = make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(rec.Nonce); err != nil {
		return nil, err
	}
	rec.Ciphertext = k.aead.Seal(nil, rec.Nonce, value, ad)
	return json.Marshal(rec)
}

// openRecord opens what sealRecord stored: ErrWrongKey for another key's record,
// ErrSecretCorrupt when it does not open.
func openRecord(k *secretKey, raw, ad []byte) ([]byte, error) {
	var rec secretRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if rec.KeyID != k.id {
		return nil, ErrWrongKey
	}
	if len(rec.Nonce) != k.aead.NonceSize() {
		return nil, ErrSecretCorrupt
	}
	out, err := k.aead.Open(nil, rec.Nonce, rec.Ciphertext, ad)
	if err != nil {
		return nil, ErrSecretCorrupt
	}
	return out, nil
}
