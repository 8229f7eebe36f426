package store

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// ToolPin is one approved tool definition of tool-level trust: the canonical JSON of
// what was approved and its SHA-256 (see upstream.ToolDefinition).
type ToolPin struct {
	Hash string          `json:"hash"`
	Def  json.RawMessage `json:"def"`
}

// PinChange changes one server's pins. Replace drops every pin the server had before Set
// is written; Delete removes the server's record, so that it has no pins at all (which is
// not the same as an empty record: a server without one pins its next listing).
type PinChange struct {
	Server  string
	Set     map[string]ToolPin
	Replace bool
	Delete  bool
}

// pinRecord is the stored value of one server: its tools' pins by the server's own tool
// names.
type pinRecord struct {
	Tools map[string]ToolPin `json:"tools"`
}

// AllPins returns every server's pins, the servers without a record left out.
func (s *Store) AllPins() (map[string]map[string]ToolPin, error) {
	out := map[string]map[string]ToolPin{}
	err := s.read(func(db *pebble.DB) error {
		return scanPrefix(db, prefixPins, func(key, value []byte) error {
			var rec pinRecord
			if err := json.Unmarshal(value, &rec); err != nil {
				return fmt.Errorf("decode pins of %q: %w", key[len(prefixPins):], err)
			}
			if rec.Tools == nil {
				rec.Tools = map[string]ToolPin{}
			}
			out[string(key[len(prefixPins):])] = rec.Tools
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load pins: %w", err)
	}
	return out, nil
}

// ServerPins returns one server's pins; an error wrapping ErrNotFound when it has no record.
func (s *Store) ServerPins(server string) (map[string]ToolPin, error) {
	var rec pinRecord
	err := s.read(func(db *pebble.DB) error {
		v, err := get(db, []byte(prefixPins+server))
		if errors.Is(err, pebble.ErrNotFound) {
			return fmt.Errorf("pins of %q: %w", server, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("read pins of %q: %w", server, err)
		}
		return json.Unmarshal(v, &rec)
	})
	if err != nil {
		return nil, err
	}
	if rec.Tools == nil {
		rec.Tools = map[string]ToolPin{}
	}
	return rec.Tools, nil
}

// WritePins applies changes in order, in one atomic batch and one fsync. It reads each
// server's record to merge into it, so it assumes one writer (the registry's pin writer).
func (s *Store) WritePins(changes []PinChange) error {
	return s.read(func(db *pebble.DB) error {
		b := db.NewBatch()
		defer b.Close()
		// The records as this batch leaves them, so a later change of the same server
		// merges into an earlier one.
		recs := map[string]*pinRecord{}
		for _, c := range changes {
			key := []byte(prefixPins + c.Server)
			if c.Delete {
				recs[c.Server] = nil
				if err := b.Delete(key, nil); err != nil {
					return fmt.Errorf("write pins: %w", err)
				}
				continue
			}
			rec, seen := recs[c.Server]
			if !seen && !c.Replace {
				v, err := get(db, key)
				switch {
				case err == nil:
					rec = &pinRecord{}
					if err := json.Unmarshal(v, rec); err != nil {
						return fmt.Errorf("decode pins of %q: %w", c.Server, err)
					}
				case !errors.Is(err, pebble.ErrNotFound):
					return fmt.Errorf("read pins of %q: %w", c.Server, err)
				}
			}
			if rec == nil || c.Replace {
				rec = &pinRecord{}
			}
			if rec.Tools == nil {
				rec.Tools = map[string]ToolPin{}
			}
			for name, p := range c.Set {
				rec.Tools[name] = p
			}
			recs[c.Server] = rec
			v, err := json.Marshal(rec)
			if err != nil {
				return fmt.Errorf("write pins: %w", err)
			}
			if err := b.Set(key, v, nil); err != nil {
				return fmt.Errorf("write pins: %w", err)
			}
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("write pins: %w", err)
		}
		return nil
	})
}
