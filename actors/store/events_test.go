package store

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// appendN appends events with ids from..to (inclusive).
func appendN(t testing.TB, s *Store, from, to uint64) {
	t.Helper()
	for id := from; id <= to; id++ {
		if err := s.appendEvent(Event{ID: id, Name: "e", Data: fmt.Appendf(nil, `{"id":%d}`, id)}); err != nil {
			t.Fatalf("AppendEvent(%d): %v", id, err)
		}
	}
}

// storedEventKeys counts the event keys physically present in pebble.
func storedEventKeys(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	if err := scanPrefix(s.db, prefixEvent, func(_, _ []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEventRoundTrip(t *testing.T) {
	s, _ := openStore(t, Options{})
	when := time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)
	in := []Event{
		{ID: 1, Name: "servers.changed", Data: []byte(`{"name":"github"}`), Time: when},
		{ID: 2, Name: "", Data: nil},
		{ID: 10, Name: "tools.changed", Data: []byte{0, 1, 2, 0xff}, Time: when.Add(time.Second)},
	}
	for _, e := range in {
		if err := s.appendEvent(e); err != nil {
			t.Fatal(err)
		}
	}
	out, err := s.EventsAfter(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("got %d events, want %d", len(out), len(in))
	}
	for i := range in {
		got, want := out[i], in[i]
		if got.ID != want.ID || got.Name != want.Name || string(got.Data) != string(want.Data) ||
			!got.Time.Equal(want.Time) || got.Time.IsZero() != want.Time.IsZero() {
			t.Errorf("event %d = %+v, want %+v", i, got, want)
		}
	}
}

func TestAppendEventRejectsNonIncreasingID(t *testing.T) {
	s, _ := openStore(t, Options{})
	appendN(t, s, 5, 5)
	for _, id := range []uint64{0, 4, 5} {
		t.Run(fmt.Sprint(id), func(t *testing.T) {
			if err := s.appendEvent(Event{ID: id}); err == nil {
				t.Errorf("AppendEvent(%d) after 5 succeeded", id)
			}
		})
	}
	if last, _ := s.LastEventID(); last != 5 {
		t.Errorf("LastEventID = %d after rejected appends, want 5", last)
	}
}

func TestEmptyLog(t *testing.T) {
	s, _ := openStore(t, Options{})
	last, err := s.LastEventID()
	if err != nil || last != 0 {
		t.Errorf("LastEventID = %d, %v; want 0", last, err)
	}
	oldest, err := s.oldestEventID()
	if err != nil || oldest != 0 {
		t.Errorf("oldestEventID = %d, %v; want 0", oldest, err)
	}
	evs, err := s.EventsAfter(0, 10)
	if err != nil || len(evs) != 0 {
		t.Errorf("EventsAfter = %v, %v; want none", evs, err)
	}
}

func TestEventsAfterBounds(t *testing.T) {
	s, _ := openStore(t, Options{EventLogSize: 1000})
	appendN(t, s, 1, 1500) // visible: 501..1500
	tests := []struct {
		name        string
		after       uint64
		limit       int
		first, last uint64 // 0, 0 for no events
	}{
		{"from start, no limit", 0, 0, 501, 1500},
		{"from start, limited", 0, 10, 501, 510},
		{"below oldest", 300, 5, 501, 505},
		{"just before oldest", 500, 1, 501, 501},
		{"middle", 1000, 3, 1001, 1003},
		{"middle, no limit", 1000, -1, 1001, 1500},
		{"limit beyond end", 1495, 100, 1496, 1500},
		{"one before last", 1499, 10, 1500, 1500},
		{"at last", 1500, 10, 0, 0},
		{"beyond last", 9999, 10, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := s.EventsAfter(tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if tt.first == 0 {
				if len(evs) != 0 {
					t.Fatalf("got %d events, want none", len(evs))
				}
				return
			}
			if want := int(tt.last - tt.first + 1); len(evs) != want {
				t.Fatalf("got %d events, want %d", len(evs), want)
			}
			for i, e := range evs {
				if want := tt.first + uint64(i); e.ID != want {
					t.Fatalf("event %d has id %d, want %d", i, e.ID, want)
				}
				if want := fmt.Sprintf(`{"id":%d}`, e.ID); string(e.Data) != want {
					t.Fatalf("event %d data = %s, want %s", e.ID, e.Data, want)
				}
			}
		})
	}
}

func TestTrimKeepsNewest(t *testing.T) {
	const size = 1000
	s, _ := openStore(t, Options{EventLogSize: size})
	for id := uint64(1); id <= 3500; id++ {
		appendN(t, s, id, id)
		oldest, err := s.oldestEventID()
		if err != nil {
			t.Fatal(err)
		}
		if want := uint64(max(1, int(id)-size+1)); oldest != want {
			t.Fatalf("after appending %d: oldestEventID = %d, want %d", id, oldest, want)
		}
		// Counting stored keys is a scan; do it around each trim and now
		// and then, not after every append.
		if id%100 > 1 && id%97 != 0 {
			continue
		}
		if n := storedEventKeys(t, s); n > size+size/10 {
			t.Fatalf("after appending %d: %d events stored, want at most %d", id, n, size+size/10)
		}
	}
	evs, err := s.EventsAfter(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != size || evs[0].ID != 2501 || evs[size-1].ID != 3500 {
		t.Errorf("visible events: %d from %d to %d, want %d from 2501 to 3500",
			len(evs), evs[0].ID, evs[len(evs)-1].ID, size)
	}
}

// TestTrimWithGaps checks that trimming counts events, not ids: the hub may
// skip ids (for example when an append failed).
func TestTrimWithGaps(t *testing.T) {
	const size = 1000
	s, _ := openStore(t, Options{EventLogSize: size})
	for i := uint64(1); i <= 2500; i++ {
		appendN(t, s, i*3, i*3)
	}
	evs, err := s.EventsAfter(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != size || evs[0].ID != 1501*3 || evs[size-1].ID != 2500*3 {
		t.Errorf("visible events: %d from %d to %d, want %d from %d to %d",
			len(evs), evs[0].ID, evs[len(evs)-1].ID, size, 1501*3, 2500*3)
	}
}

func TestLastEventIDSurvivesTrimmedLog(t *testing.T) {
	s, dir := openStore(t, Options{})
	appendN(t, s, 1, 42)
	// Remove every event behind the store's back, as if all were trimmed.
	if err := s.db.DeleteRange([]byte(prefixEvent), prefixEnd(prefixEvent), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, dir, Options{})
	if last, err := s.LastEventID(); err != nil || last != 42 {
		t.Errorf("LastEventID = %d, %v; want 42", last, err)
	}
	if oldest, err := s.oldestEventID(); err != nil || oldest != 0 {
		t.Errorf("oldestEventID = %d, %v; want 0 (empty log)", oldest, err)
	}
	if err := s.appendEvent(Event{ID: 42}); err == nil {
		t.Error("id 42 was accepted again after reopen")
	}
}

func TestReopenWithSmallerLogSize(t *testing.T) {
	s, dir := openStore(t, Options{EventLogSize: 3000})
	appendN(t, s, 1, 3000)
	s = reopen(t, s, dir, Options{EventLogSize: 1000})
	if oldest, _ := s.oldestEventID(); oldest != 2001 {
		t.Errorf("oldestEventID = %d, want 2001", oldest)
	}
	appendN(t, s, 3001, 3001)
	if n := storedEventKeys(t, s); n != 1000 {
		t.Errorf("stored events after the first append = %d, want 1000", n)
	}
	evs, _ := s.EventsAfter(0, 0)
	if len(evs) != 1000 || evs[0].ID != 2002 {
		t.Errorf("visible events: %d from %d, want 1000 from 2002", len(evs), evs[0].ID)
	}
}

// TestConcurrentAppendAndRead runs one writer (as the hub is) against
// several readers; run it with -race.
func TestConcurrentAppendAndRead(t *testing.T) {
	const (
		size    = 1000
		total   = 3000
		readers = 4
	)
	s, _ := openStore(t, Options{EventLogSize: size})
	done := make(chan struct{})
	errs := make(chan error, readers+1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for id := uint64(1); id <= total; id++ {
			if err := s.appendEvent(Event{ID: id, Name: "e", Data: []byte("x")}); err != nil {
				errs <- err
				return
			}
		}
	}()
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prevLast uint64
			for {
				select {
				case <-done:
					return
				default:
				}
				last, err := s.LastEventID()
				if err != nil {
					errs <- err
					return
				}
				if last < prevLast {
					errs <- fmt.Errorf("reader %d: LastEventID went back from %d to %d", r, prevLast, last)
					return
				}
				prevLast = last
				after := last / 2
				evs, err := s.EventsAfter(after, 200)
				if err != nil {
					errs <- err
					return
				}
				if len(evs) > 200 {
					errs <- fmt.Errorf("reader %d: %d events, limit 200", r, len(evs))
					return
				}
				for i, e := range evs {
					if e.ID <= after || (i > 0 && e.ID != evs[i-1].ID+1) {
						errs <- fmt.Errorf("reader %d: bad sequence after %d: id %d at %d", r, after, e.ID, i)
						return
					}
				}
				if _, err := s.oldestEventID(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if last, _ := s.LastEventID(); last != total {
		t.Errorf("LastEventID = %d, want %d", last, total)
	}
}

func TestDecodeEventRejectsCorruptValues(t *testing.T) {
	good := encodeEvent(Event{ID: 1, Name: "name", Data: []byte("d"), Time: time.Now()})
	tests := []struct {
		name string
		v    []byte
	}{
		{"empty", nil},
		{"unknown version", append([]byte{9}, good[1:]...)},
		{"truncated time", []byte{eventFormatV1, eventHasTime, 0x80}},
		{"name longer than value", []byte{eventFormatV1, 0, 50, 'a'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeEvent(1, tt.v); err == nil {
				t.Error("decodeEvent accepted a corrupt value")
			}
		})
	}
	if _, err := decodeEvent(1, good); err != nil {
		t.Errorf("decodeEvent(good) = %v", err)
	}
}

// TestAppendEventsBatches appends in batches of uneven size across several trims and checks
// that the log holds exactly the newest EventLogSize events, in order, and rejects a batch
// that does not increase.
func TestAppendEventsBatches(t *testing.T) {
	s, _ := openStore(t, Options{EventLogSize: 1000})
	next := uint64(1)
	for next <= 3000 {
		var batch []Event
		for i := 0; i < 7 && next <= 3000; i++ {
			batch = append(batch, Event{ID: next, Name: "e", Data: []byte("{}")})
			next++
		}
		if err := s.AppendEvents(batch); err != nil {
			t.Fatalf("AppendEvents up to %d: %v", next-1, err)
		}
	}
	evs, err := s.EventsAfter(0, 0)
	if err != nil || len(evs) != 1000 || evs[0].ID != 2001 || evs[999].ID != 3000 {
		t.Fatalf("EventsAfter = %d events (%v), first/last want 2001/3000", len(evs), err)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].ID != evs[i-1].ID+1 {
			t.Fatalf("gap or disorder at %d: %d after %d", i, evs[i].ID, evs[i-1].ID)
		}
	}
	if err := s.AppendEvents([]Event{{ID: 3001}, {ID: 3001}}); err == nil {
		t.Error("a batch with a repeated id was accepted")
	}
	if last, _ := s.LastEventID(); last != 3000 {
		t.Errorf("LastEventID = %d after a rejected batch, want 3000", last)
	}
}

// oldestEventID is the id of the oldest event still in the log (0 when empty), read as
// readers see it: the retention tests check trimming with it.
func (s *Store) oldestEventID() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	return s.events.oldestVisible(), nil
}

// appendEvent appends one event, as the hub's writer does in batches.
func (s *Store) appendEvent(e Event) error { return s.AppendEvents([]Event{e}) }

// TestAppendBatchLargerThanLog: one batch bigger than the whole log, into an empty log, keeps
// the newest EventLogSize events (it used to index the empty log and panic).
func TestAppendBatchLargerThanLog(t *testing.T) {
	s, _ := openStore(t, Options{EventLogSize: MinEventLogSize})
	var batch []Event
	for id := uint64(1); id <= 2500; id++ {
		batch = append(batch, Event{ID: id, Name: "servers.changed", Data: []byte(`{}`)})
	}
	if err := s.AppendEvents(batch); err != nil {
		t.Fatal(err)
	}
	got, err := s.EventsAfter(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != MinEventLogSize || got[0].ID != 1501 || got[len(got)-1].ID != 2500 {
		t.Fatalf("events after the batch: %d; want %d from 1501 to 2500", len(got), MinEventLogSize)
	}
	if oldest, _ := s.oldestEventID(); oldest != 1501 {
		t.Fatalf("oldest = %d, want 1501", oldest)
	}
	// The next batch trims the log as usual.
	if err := s.AppendEvents([]Event{{ID: 2501, Name: "x", Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if last, _ := s.LastEventID(); last != 2501 {
		t.Fatalf("last = %d, want 2501", last)
	}
}
