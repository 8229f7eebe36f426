package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Token is an agent token's record: its scope and times, and the SHA-256 of the token,
// never the token itself (it is shown once, when created). A token is high-entropy random,
// so a plain digest is enough: nothing can be guessed from it.
type Token struct {
	Name string `json:"name"`
	// Digest is the SHA-256 of the token.
	Digest    []byte     `json:"sha256"`
	Servers   []string   `json:"servers"`
	Tools     []string   `json:"tools,omitempty"`
	ReadOnly  bool       `json:"read_only"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	LastUsed  *time.Time `json:"last_used_at,omitempty"`
}

// PutTokens creates or replaces the records in one synced batch: a token created is on
// disk before its answer, and the coalesced last-used times cost one write for many.
func (s *Store) PutTokens(tokens ...Token) error {
	return s.read(func(db *pebble.DB) error {
		b := db.NewBatch()
		defer b.Close()
		for _, t := range tokens {
			if t.Name == "" {
				return errors.New("put token: empty name")
			}
			v, err := json.Marshal(t)
			if err != nil {
				return fmt.Errorf("put token %q: %w", t.Name, err)
			}
			if err := b.Set([]byte(prefixToken+t.Name), v, nil); err != nil {
				return fmt.Errorf("put token %q: %w", t.Name, err)
			}
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("put tokens: %w", err)
		}
		return nil
	})
}

// DeleteToken deletes a token's record (synced); an error wrapping ErrNotFound when there
// is none.
func (s *Store) DeleteToken(name string) error {
	return s.read(func(db *pebble.DB) error {
		key := []byte(prefixToken + name)
		if _, err := get(db, key); errors.Is(err, pebble.ErrNotFound) {
			return fmt.Errorf("token %q: %w", name, ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("delete token %q: %w", name, err)
		}
		if err := db.Delete(key, pebble.Sync); err != nil {
			return fmt.Errorf("delete token %q: %w", name, err)
		}
		return nil
	})
}

// ListTokens returns every token record, by name.
func (s *Store) ListTokens() ([]Token, error) {
	var out []Token
	err := s.read(func(db *pebble.DB) error {
		return scanPrefix(db, prefixToken, func(key, value []byte) error {
			var t Token
			if err := json.Unmarshal(value, &t); err != nil {
				return fmt.Errorf("decode token %q: %w", key[len(prefixToken):], err)
			}
			out = append(out, t)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}
