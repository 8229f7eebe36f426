package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Event is one entry of the event log, as sent on the SSE stream.
type Event struct {
	ID   uint64
	Name string
	Data []byte
	Time time.Time
}

// errCorruptEvent reports an event value that cannot be decoded.
var errCorruptEvent = errors.New("corrupt event record")

// eventFormatV1 is the first byte of every stored event value.
const eventFormatV1 = 1

// eventHasTime is set in the flags byte when the event carries a time; the
// zero time has no UnixNano representation.
const eventHasTime = 1

// eventLog is the in-memory index of the event log. It remembers the ids of
// the events physically present so that trimming can happen in batches (one
// range deletion per batch instead of one tombstone per event) while readers
// still see exactly the newest size events.
type eventLog struct {
	// mu serialises appends and guards the fields below. It is held across
	// the batch commit so that readers never see an index ahead of or behind
	// the data.
	mu   sync.Mutex
	size int
	// ids holds the ids of the stored events, ascending. It may hold up to
	// size+slack() ids; only the newest size are visible.
	ids  []uint64
	last uint64
}

// slack is how many events beyond size may be stored before a trim; it
// makes trimming one range deletion per slack appends.
func (l *eventLog) slack() int { return l.size / 10 }

// oldestVisible returns the oldest visible event id, or 0 when the log is
// empty. l.mu must be held.
func (l *eventLog) oldestVisible() uint64 {
	if len(l.ids) == 0 {
		return 0
	}
	return l.ids[max(0, len(l.ids)-l.size)]
}

// load builds the index from the database.
func (l *eventLog) load(db *pebble.DB, size int) error {
	l.size = size
	v, err := get(db, []byte(keyLastEventID))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return fmt.Errorf("read last event id: %w", err)
	case len(v) != 8:
		return fmt.Errorf("read last event id: %w", errCorruptEvent)
	default:
		l.last = binary.BigEndian.Uint64(v)
	}
	err = scanPrefix(db, prefixEvent, func(key, _ []byte) error {
		id, ok := eventID(key)
		if !ok {
			return fmt.Errorf("event key %q: %w", key, errCorruptEvent)
		}
		l.ids = append(l.ids, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load event log: %w", err)
	}
	if n := len(l.ids); n > 0 && l.ids[n-1] > l.last {
		l.last = l.ids[n-1]
	}
	return nil
}

// AppendEvents stores events (ascending ids) in one atomic batch and one fsync, so that a
// writer that falls behind catches up with one disk sync for many events (group commit).
// The write is synced: an event id handed out before a crash is never reused after it.
func (s *Store) AppendEvents(events []Event) error {
	if len(events) == 0 {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	l := &s.events
	l.mu.Lock()
	defer l.mu.Unlock()
	prev := l.last
	for _, e := range events {
		if e.ID <= prev {
			return fmt.Errorf("append event %d: id must be greater than the last event id %d", e.ID, prev)
		}
		prev = e.ID
	}

	// drop is how many of the oldest stored ids this append removes: once the log holds
	// size+slack events, it is cut back to the newest size. When this batch alone overflows
	// the log, its own oldest events (skip of them) are never written.
	drop, skip := 0, 0
	if n := len(l.ids) + len(events); n >= l.size+l.slack() {
		drop = n - l.size
		skip = max(0, drop-len(l.ids))
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, e := range events[skip:] {
		key := eventKey(e.ID)
		if err := b.Set(key[:], encodeEvent(e), nil); err != nil {
			return fmt.Errorf("append event %d: %w", e.ID, err)
		}
	}
	e := events[len(events)-1]
	var last [8]byte
	binary.BigEndian.PutUint64(last[:], e.ID)
	if err := b.Set([]byte(keyLastEventID), last[:], nil); err != nil {
		return fmt.Errorf("append event %d: %w", e.ID, err)
	}
	if drop > 0 && len(l.ids) > 0 {
		// The old ids below the first kept one go in one range deletion: to l.ids[drop],
		// or to this batch's first written event when every old one goes.
		from := eventKey(l.ids[0])
		keep := events[skip].ID
		if drop < len(l.ids) {
			keep = l.ids[drop]
		}
		to := eventKey(keep)
		if err := b.DeleteRange(from[:], to[:], nil); err != nil {
			return fmt.Errorf("trim event log: %w", err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("append event %d: %w", e.ID, err)
	}

	l.last = e.ID
	for _, e := range events[skip:] {
		l.ids = append(l.ids, e.ID)
	}
	drop -= skip
	if drop > 0 {
		// Shift in place so the slice's backing array is reused.
		n := copy(l.ids, l.ids[min(drop, len(l.ids)):])
		l.ids = l.ids[:n]
	}
	return nil
}

// LastEventID returns the highest event id ever appended, or 0 if none was.
// It survives restarts even when that event has been trimmed.
func (s *Store) LastEventID() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	return s.events.last, nil
}

// EventsAfter returns the events with ids greater than id, oldest first, at
// most limit of them. limit <= 0 means no limit other than the log size.
func (s *Store) EventsAfter(id uint64, limit int) ([]Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	s.events.mu.Lock()
	lower := s.events.oldestVisible()
	last := s.events.last
	count := len(s.events.ids)
	s.events.mu.Unlock()
	if id >= last || lower == 0 {
		return nil, nil
	}
	lower = max(lower, id+1)
	if limit <= 0 || limit > count {
		limit = count
	}

	from := eventKey(lower)
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: from[:],
		UpperBound: prefixEnd(prefixEvent),
	})
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	out := make([]Event, 0, min(limit, 64))
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("read events: %w", err)
		}
		eid, ok := eventID(it.Key())
		if !ok {
			_ = it.Close()
			return nil, fmt.Errorf("read events: key %q: %w", it.Key(), errCorruptEvent)
		}
		e, err := decodeEvent(eid, v)
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("read events: %w", err)
		}
		out = append(out, e)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// eventKey returns "ev/" followed by id in big-endian order.
func eventKey(id uint64) [len(prefixEvent) + 8]byte {
	var k [len(prefixEvent) + 8]byte
	copy(k[:], prefixEvent)
	binary.BigEndian.PutUint64(k[len(prefixEvent):], id)
	return k
}

// eventID parses a key made by eventKey.
func eventID(key []byte) (uint64, bool) {
	if len(key) != len(prefixEvent)+8 || string(key[:len(prefixEvent)]) != prefixEvent {
		return 0, false
	}
	return binary.BigEndian.Uint64(key[len(prefixEvent):]), true
}

// encodeEvent encodes e (without its id, which is in the key) as:
// version byte, flags byte, [varint UnixNano if flags has eventHasTime],
// uvarint name length, name, data.
func encodeEvent(e Event) []byte {
	buf := make([]byte, 0, 2+binary.MaxVarintLen64*2+len(e.Name)+len(e.Data))
	var flags byte
	if !e.Time.IsZero() {
		flags |= eventHasTime
	}
	buf = append(buf, eventFormatV1, flags)
	if flags&eventHasTime != 0 {
		buf = binary.AppendVarint(buf, e.Time.UnixNano())
	}
	buf = binary.AppendUvarint(buf, uint64(len(e.Name)))
	buf = append(buf, e.Name...)
	return append(buf, e.Data...)
}

// decodeEvent decodes a value made by encodeEvent, copying everything out of
// v (which pebble owns).
func decodeEvent(id uint64, v []byte) (Event, error) {
	e := Event{ID: id}
	if len(v) < 2 || v[0] != eventFormatV1 {
		return e, fmt.Errorf("event %d: %w", id, errCorruptEvent)
	}
	flags, rest := v[1], v[2:]
	if flags&eventHasTime != 0 {
		ns, n := binary.Varint(rest)
		if n <= 0 {
			return e, fmt.Errorf("event %d: %w", id, errCorruptEvent)
		}
		e.Time = time.Unix(0, ns)
		rest = rest[n:]
	}
	nameLen, n := binary.Uvarint(rest)
	if n <= 0 || nameLen > uint64(len(rest)-n) {
		return e, fmt.Errorf("event %d: %w", id, errCorruptEvent)
	}
	rest = rest[n:]
	e.Name = string(rest[:nameLen])
	if data := rest[nameLen:]; len(data) > 0 {
		e.Data = append([]byte(nil), data...)
	}
	return e, nil
}

// SetEventsClean records whether the event writer stopped cleanly, with every id it handed
// out on disk. The hub sets it when it stops and clears it when it starts, so a hub that
// finds it unset knows the previous daemon died with events in flight.
func (s *Store) SetEventsClean(clean bool) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	var err error
	if clean {
		err = s.db.Set([]byte(keyEventsClean), []byte{1}, pebble.Sync)
	} else {
		err = s.db.Delete([]byte(keyEventsClean), pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("set events clean: %w", err)
	}
	return nil
}

// EventsClean reports what SetEventsClean last recorded (false when never set).
func (s *Store) EventsClean() (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false, ErrClosed
	}
	v, closer, err := s.db.Get([]byte(keyEventsClean))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("events clean: %w", err)
	}
	defer closer.Close()
	return len(v) == 1 && v[0] == 1, nil
}
