package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// The activity log's keys (see the package doc):
//
//	ac/<id: 8-byte big-endian uint64>  one activity record, as its owner encodes it (JSON)
//	meta/lastActivityID                highest activity id ever written (8-byte big-endian)
//
// The store does not read the records: the activity actor (actors/activity) owns their
// format, their ids and their retention; the store keeps bytes in id order.
const (
	prefixActivity    = "ac/"
	keyLastActivityID = "meta/lastActivityID"
)

// ActivityEntry is one stored activity record: its id and its encoded form.
type ActivityEntry struct {
	ID   uint64
	Data []byte
}

func activityKey(id uint64) []byte {
	k := make([]byte, len(prefixActivity)+8)
	copy(k, prefixActivity)
	binary.BigEndian.PutUint64(k[len(prefixActivity):], id)
	return k
}

func activityID(key []byte) (uint64, bool) {
	if len(key) != len(prefixActivity)+8 || string(key[:len(prefixActivity)]) != prefixActivity {
		return 0, false
	}
	return binary.BigEndian.Uint64(key[len(prefixActivity):]), true
}

// PutActivity writes entries (ascending ids) and the last id in one synced batch: one
// fsync for many records, and an id handed out before a crash is never reused after it.
func (s *Store) PutActivity(entries []ActivityEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.read(func(db *pebble.DB) error {
		b := db.NewBatch()
		defer b.Close()
		for _, e := range entries {
			if err := b.Set(activityKey(e.ID), e.Data, nil); err != nil {
				return fmt.Errorf("put activity %d: %w", e.ID, err)
			}
		}
		var last [8]byte
		binary.BigEndian.PutUint64(last[:], entries[len(entries)-1].ID)
		if err := b.Set([]byte(keyLastActivityID), last[:], nil); err != nil {
			return fmt.Errorf("put activity: %w", err)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("put activity: %w", err)
		}
		return nil
	})
}

// ActivityBounds returns the oldest stored activity id (0 when none is stored) and the
// highest id ever written (0 when none ever was).
func (s *Store) ActivityBounds() (oldest, last uint64, err error) {
	err = s.read(func(db *pebble.DB) error {
		v, err := get(db, []byte(keyLastActivityID))
		switch {
		case errors.Is(err, pebble.ErrNotFound):
		case err != nil:
			return fmt.Errorf("read last activity id: %w", err)
		case len(v) == 8:
			last = binary.BigEndian.Uint64(v)
		}
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefixActivity), UpperBound: prefixEnd(prefixActivity)})
		if err != nil {
			return err
		}
		defer it.Close()
		if it.First() {
			oldest, _ = activityID(it.Key())
		}
		if it.Last() {
			if id, _ := activityID(it.Key()); id > last {
				last = id
			}
		}
		return it.Error()
	})
	return oldest, last, err
}

// ScanActivity calls fn for the stored records with ids below before (0: all), newest
// first, until fn returns false. data is valid only during the call.
func (s *Store) ScanActivity(before uint64, fn func(id uint64, data []byte) bool) error {
	return s.scanActivity(before, false, fn)
}

// ScanActivityOldest calls fn for the stored records from the oldest up, until fn returns
// false. data is valid only during the call.
func (s *Store) ScanActivityOldest(fn func(id uint64, data []byte) bool) error {
	return s.scanActivity(0, true, fn)
}

func (s *Store) scanActivity(before uint64, ascending bool, fn func(id uint64, data []byte) bool) error {
	return s.read(func(db *pebble.DB) error {
		upper := prefixEnd(prefixActivity)
		if before > 0 {
			upper = activityKey(before)
		}
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefixActivity), UpperBound: upper})
		if err != nil {
			return err
		}
		defer it.Close()
		valid, step := it.Last, it.Prev
		if ascending {
			valid, step = it.First, it.Next
		}
		for ok := valid(); ok; ok = step() {
			id, good := activityID(it.Key())
			if !good {
				continue
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return err
			}
			if !fn(id, v) {
				break
			}
		}
		return it.Error()
	})
}

// GetActivity returns the encoded record with id, or an error wrapping ErrNotFound.
func (s *Store) GetActivity(id uint64) ([]byte, error) {
	var out []byte
	err := s.read(func(db *pebble.DB) error {
		v, err := get(db, activityKey(id))
		if errors.Is(err, pebble.ErrNotFound) {
			return fmt.Errorf("activity %d: %w", id, ErrNotFound)
		}
		out = v
		return err
	})
	return out, err
}

// DeleteActivityBelow deletes every record with an id below id, in one range deletion.
func (s *Store) DeleteActivityBelow(id uint64) error {
	return s.read(func(db *pebble.DB) error {
		if err := db.DeleteRange([]byte(prefixActivity), activityKey(id), pebble.Sync); err != nil {
			return fmt.Errorf("delete activity below %d: %w", id, err)
		}
		return nil
	})
}
