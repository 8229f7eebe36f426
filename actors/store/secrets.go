package store

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// ErrSecretsNotOpen is returned by SetSecret and SecretValue before
// OpenSecrets has loaded the key.
var ErrSecretsNotOpen = errors.New("secrets key not loaded")

// ErrWrongKey is returned (wrapped) by SecretValue when a secret was
// encrypted with a different key than the one in the key file, for example
// because the key file was replaced or deleted and recreated.
var ErrWrongKey = errors.New("secret was encrypted with a different key")

// ErrSecretCorrupt is returned (wrapped) by SecretValue when a secret fails
// authentication under the right key: the stored record was altered.
var ErrSecretCorrupt = errors.New("secret record failed authentication")

// SecretMeta describes a stored secret without its value.
type SecretMeta struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// secretRecord is the stored form of a secret. Only Ciphertext depends on
// the value; the times are not secret.
type secretRecord struct {
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	KeyID      string    `json:"key_id"`
	Nonce      []byte    `json:"nonce"`
	Ciphertext []byte    `json:"ciphertext"`
}

// secretKey is the loaded AES-256-GCM key.
type secretKey struct {
	aead cipher.AEAD
	// id identifies the key without revealing it (a hash of it), so that a
	// record written under another key is told apart from a corrupt one.
	id string
}

const (
	secretKeySize = 32
	// secretADPrefix is the start of the additional data bound to each
	// ciphertext; the secret's name follows it, so a ciphertext moved to
	// another name fails authentication.
	secretADPrefix = "mcpproxy/secret/v1\x00"
	keyIDContext   = "mcpproxy secrets key id\x00"
)

// OpenSecrets loads the secrets key from keyFile, creating it (mode 0600,
// 32 random bytes written as hex) if it does not exist. Its directory is
// created with mode 0700 if missing. It must be called before SetSecret and
// SecretValue; Secret, ListSecrets and DeleteSecret work without the key.
//
// If some stored secrets were written with another key (the key file was
// replaced), OpenSecrets still succeeds, so the daemon can run and those
// secrets can be set again, but it logs a warning; SecretValue returns an
// error wrapping ErrWrongKey for them.
func (s *Store) OpenSecrets(keyFile string) error {
	raw, err := loadOrCreateKey(keyFile)
	if err != nil {
		return fmt.Errorf("open secrets: %w", err)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return fmt.Errorf("open secrets: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("open secrets: %w", err)
	}
	sum := sha256.Sum256(append([]byte(keyIDContext), raw...))
	key := &secretKey{aead: aead, id: hex.EncodeToString(sum[:8])}

	if info, err := os.Stat(keyFile); err == nil && info.Mode().Perm()&0o077 != 0 {
		s.logger.Warn("secrets key file is readable by other users; chmod 600 it",
			"key_file", keyFile, "mode", info.Mode().Perm().String())
	}

	s.secretsMu.Lock()
	defer s.secretsMu.Unlock()
	return s.read(func(db *pebble.DB) error {
		// Secrets are few, so counting those under another key is cheap,
		// and it tells the operator at start-up rather than at first use.
		foreign := 0
		err := scanPrefix(db, prefixSecret, func(_, value []byte) error {
			var rec secretRecord
			if json.Unmarshal(value, &rec) == nil && rec.KeyID != key.id {
				foreign++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("open secrets: %w", err)
		}
		if foreign > 0 {
			s.logger.Warn("secrets key file differs from the key some stored secrets were written with; they cannot be read until set again",
				"key_file", keyFile, "unreadable_secrets", foreign)
		}
		s.key = key
		return nil
	})
}

// loadOrCreateKey reads the key file, or creates it atomically: the key is
// written to a temporary file, synced, then hard-linked to keyFile, which
// fails if another process created keyFile first (then that key is used).
// A crash therefore never leaves a partial key file behind.
func loadOrCreateKey(keyFile string) ([]byte, error) {
	key, err := readKey(keyFile)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	dir := filepath.Dir(keyFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create key dir: %w", err)
	}
	key = make([]byte, secretKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".secrets-key-*")
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp already uses mode 0600; Chmod makes the requirement
	// explicit instead of relying on that detail.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create key file: %w", err)
	}
	if _, err := tmp.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write key file: %w", err)
	}
	if err := os.Link(tmp.Name(), keyFile); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKey(keyFile)
		}
		return nil, fmt.Errorf("create key file: %w", err)
	}
	syncDir(dir)
	return key, nil
}

// readKey reads a key file holding 64 hex digits (as written here) or the
// 32 raw key bytes.
func readKey(keyFile string) ([]byte, error) {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	if trimmed := bytes.TrimSpace(b); len(trimmed) == 2*secretKeySize {
		key := make([]byte, secretKeySize)
		if _, err := hex.Decode(key, trimmed); err == nil {
			return key, nil
		}
	}
	if len(b) == secretKeySize {
		return b, nil
	}
	return nil, fmt.Errorf("key file %s: want %d hex-encoded bytes", keyFile, secretKeySize)
}

// syncDir makes a new directory entry durable; failure only weakens
// durability, so it is ignored.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// SetSecret stores value under name, encrypted with a fresh random nonce,
// and returns its metadata. Updating keeps the original CreatedAt. The write
// is synced to disk.
func (s *Store) SetSecret(name, value string) (SecretMeta, error) {
	if name == "" {
		return SecretMeta{}, errors.New("set secret: empty name")
	}
	s.secretsMu.Lock()
	defer s.secretsMu.Unlock()
	key := s.key
	if key == nil {
		return SecretMeta{}, fmt.Errorf("set secret %q: %w", name, ErrSecretsNotOpen)
	}
	var meta SecretMeta
	err := s.read(func(db *pebble.DB) error {
		now := time.Now().UTC()
		rec := secretRecord{CreatedAt: now, UpdatedAt: now, KeyID: key.id}
		old, err := getSecretRecord(db, name)
		switch {
		case err == nil:
			rec.CreatedAt = old.CreatedAt
		case !errors.Is(err, ErrNotFound):
			return err
		}
		rec.Nonce = make([]byte, key.aead.NonceSize())
		if _, err := rand.Read(rec.Nonce); err != nil {
			return fmt.Errorf("set secret %q: %w", name, err)
		}
		rec.Ciphertext = key.aead.Seal(nil, rec.Nonce, []byte(value), secretAD(name))
		v, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("set secret %q: %w", name, err)
		}
		if err := db.Set([]byte(prefixSecret+name), v, pebble.Sync); err != nil {
			return fmt.Errorf("set secret %q: %w", name, err)
		}
		meta = SecretMeta{Name: name, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt}
		s.secretsGen.Add(1)
		return nil
	})
	return meta, err
}

// SecretsGeneration changes whenever a secret is set or deleted.
func (s *Store) SecretsGeneration() uint64 { return s.secretsGen.Load() }

// SecretValues returns the values of every secret that decrypts, for scrubbing text of
// them; a secret that does not decrypt is left out (it resolves to nothing either).
func (s *Store) SecretValues() ([]string, error) {
	metas, err := s.ListSecrets()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(metas))
	for _, m := range metas {
		if v, err := s.SecretValue(m.Name); err == nil {
			out = append(out, v)
		}
	}
	return out, nil
}

// SecretValue returns the decrypted value of the secret. It returns an error
// wrapping ErrNotFound if there is none, ErrWrongKey if the secret was
// written under another key, and ErrSecretCorrupt if it fails
// authentication.
func (s *Store) SecretValue(name string) (string, error) {
	s.secretsMu.Lock()
	key := s.key
	s.secretsMu.Unlock()
	if key == nil {
		return "", fmt.Errorf("secret %q: %w", name, ErrSecretsNotOpen)
	}
	var value string
	err := s.read(func(db *pebble.DB) error {
		rec, err := getSecretRecord(db, name)
		if err != nil {
			return err
		}
		if rec.KeyID != key.id {
			return fmt.Errorf("secret %q: %w (check the secrets key file)", name, ErrWrongKey)
		}
		if len(rec.Nonce) != key.aead.NonceSize() {
			return fmt.Errorf("secret %q: %w", name, ErrSecretCorrupt)
		}
		plain, err := key.aead.Open(nil, rec.Nonce, rec.Ciphertext, secretAD(name))
		if err != nil {
			return fmt.Errorf("secret %q: %w", name, ErrSecretCorrupt)
		}
		value = string(plain)
		return nil
	})
	return value, err
}

// Secret returns the metadata of the secret, or an error wrapping
// ErrNotFound.
func (s *Store) Secret(name string) (SecretMeta, error) {
	var meta SecretMeta
	err := s.read(func(db *pebble.DB) error {
		rec, err := getSecretRecord(db, name)
		if err != nil {
			return err
		}
		meta = SecretMeta{Name: name, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt}
		return nil
	})
	return meta, err
}

// ListSecrets returns the metadata of all secrets, sorted by name.
func (s *Store) ListSecrets() ([]SecretMeta, error) {
	var out []SecretMeta
	err := s.read(func(db *pebble.DB) error {
		// Keys iterate in byte order, which is name order.
		return scanPrefix(db, prefixSecret, func(key, value []byte) error {
			name := string(key[len(prefixSecret):])
			var rec secretRecord
			if err := json.Unmarshal(value, &rec); err != nil {
				return fmt.Errorf("decode secret %q: %w", name, err)
			}
			out = append(out, SecretMeta{Name: name, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	return out, nil
}

// DeleteSecret deletes the secret, or returns an error wrapping ErrNotFound.
// The deletion is synced to disk.
func (s *Store) DeleteSecret(name string) error {
	s.secretsMu.Lock()
	defer s.secretsMu.Unlock()
	return s.read(func(db *pebble.DB) error {
		k := []byte(prefixSecret + name)
		if _, err := get(db, k); err != nil {
			if errors.Is(err, pebble.ErrNotFound) {
				return fmt.Errorf("secret %q: %w", name, ErrNotFound)
			}
			return fmt.Errorf("delete secret %q: %w", name, err)
		}
		if err := db.Delete(k, pebble.Sync); err != nil {
			return fmt.Errorf("delete secret %q: %w", name, err)
		}
		s.secretsGen.Add(1)
		return nil
	})
}

// getSecretRecord reads and decodes one secret record.
func getSecretRecord(db *pebble.DB, name string) (secretRecord, error) {
	var rec secretRecord
	v, err := get(db, []byte(prefixSecret+name))
	if errors.Is(err, pebble.ErrNotFound) {
		return rec, fmt.Errorf("secret %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return rec, fmt.Errorf("read secret %q: %w", name, err)
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return rec, fmt.Errorf("decode secret %q: %w", name, err)
	}
	return rec, nil
}

// secretAD is the additional data authenticated with the secret's value.
func secretAD(name string) []byte {
	return []byte(secretADPrefix + name)
}
