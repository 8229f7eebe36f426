package store

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// oauthADPrefix starts the additional data of a sealed OAuth record; the record's key
// follows, so a record moved to another server does not decrypt.
const oauthADPrefix = "mcpproxy/oauth/v1\x00"

// oauthCache keeps the opened OAuth records, and which keys have none, in memory. An
// HTTP upstream's oauth.Transport asks for its server's tokens on every request (so that
// a login or logout takes effect on the next one); without the cache each request paid
// a pebble lookup that walks every level (most servers have no tokens, and a missing key
// is the most expensive lookup) plus an AES-GCM open. It only mirrors pebble: SetOAuth
// and DeleteOAuth are the only writers of the oa/ keys and drop the entry after writing,
// and gen keeps a read that raced with a write from caching what it read before it.
// Its size is bounded by the keys ever asked for (a few per configured server).
type oauthCache struct {
	mu      sync.Mutex
	gen     uint64
	records map[string]oauthEntry
}

// oauthEntry is one cached record; absent says the key has none.
type oauthEntry struct {
	value  []byte
	absent bool
}

// lookup returns the cached entry of key, and otherwise the generation a read of pebble
// must still see in fill for its result to be kept.
func (c *oauthCache) lookup(key string) (oauthEntry, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.records[key]
	return e, ok, c.gen
}

// fill caches what a read of key found, unless a write happened since lookup gave gen.
func (c *oauthCache) fill(key string, gen uint64, e oauthEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.records == nil {
		c.records = make(map[string]oauthEntry)
	}
	c.records[key] = e
}

// forget drops key after a write (failed or not: pebble is then read again).
func (c *oauthCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.records, key)
}

// SetOAuth stores value (an OAuth record: a server's tokens, a registered client) under
// key, sealed like a secret with the secrets key. The write is synced.
func (s *Store) SetOAuth(key string, value []byte) error {
	k, err := s.secretsKey()
	if err != nil {
		return fmt.Errorf("set oauth record: %w", err)
	}
	v, err := sealRecord(k, value, []byte(oauthADPrefix+key))
	if err != nil {
		return fmt.Errorf("set oauth record: %w", err)
	}
	defer s.oauth.forget(key)
	return s.read(func(db *pebble.DB) error {
		if err := db.Set([]byte(prefixOAuth+key), v, pebble.Sync); err != nil {
			return fmt.Errorf("set oauth record: %w", err)
		}
		return nil
	})
}

// OAuth returns the record under key, or an error wrapping ErrNotFound.
func (s *Store) OAuth(key string) ([]byte, error) {
	k, err := s.secretsKey()
	if err != nil {
		return nil, fmt.Errorf("oauth record: %w", err)
	}
	var out []byte
	err = s.read(func(db *pebble.DB) error {
		e, ok, gen := s.oauth.lookup(key)
		if ok {
			if e.absent {
				return fmt.Errorf("oauth record: %w", ErrNotFound)
			}
			// A copy: the caller may keep or change what it gets.
			out = append([]byte(nil), e.value...)
			return nil
		}
		v, err := get(db, []byte(prefixOAuth+key))
		if errors.Is(err, pebble.ErrNotFound) {
			s.oauth.fill(key, gen, oauthEntry{absent: true})
			return fmt.Errorf("oauth record: %w", ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("read oauth record: %w", err)
		}
		out, err = openRecord(k, v, []byte(oauthADPrefix+key))
		if err != nil {
			return fmt.Errorf("oauth record: %w", err)
		}
		s.oauth.fill(key, gen, oauthEntry{value: append([]byte(nil), out...)})
		return nil
	})
	return out, err
}

// DeleteOAuth deletes the record under key; a missing one is no error. Synced.
func (s *Store) DeleteOAuth(key string) error {
	defer s.oauth.forget(key)
	return s.read(func(db *pebble.DB) error {
		if err := db.Delete([]byte(prefixOAuth+key), pebble.Sync); err != nil {
			return fmt.Errorf("delete oauth record: %w", err)
		}
		return nil
	})
}
