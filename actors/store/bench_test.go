package store

import (
	"testing"
	"time"
)

// benchEventData is a typical servers.changed payload.
var benchEventData = []byte(`{"name":"github","status":"ready","tools":42,"error":""}`)

// BenchmarkAppendEvent measures one NoSync append, including the amortised
// batch trim of the default-size log.
func BenchmarkAppendEvent(b *testing.B) {
	s, _ := openStore(b, Options{})
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	var id uint64
	for b.Loop() {
		id++
		if err := s.appendEvent(Event{ID: id, Name: "servers.changed", Data: benchEventData, Time: now}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEventsAfter measures replay for a reconnecting SSE client that
// missed 100 events, against a full default-size log.
func BenchmarkEventsAfter(b *testing.B) {
	s, _ := openStore(b, Options{})
	now := time.Now()
	const total = DefaultEventLogSize + DefaultEventLogSize/20
	for id := uint64(1); id <= total; id++ {
		if err := s.appendEvent(Event{ID: id, Name: "servers.changed", Data: benchEventData, Time: now}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		evs, err := s.EventsAfter(total-100, 1000)
		if err != nil {
			b.Fatal(err)
		}
		if len(evs) != 100 {
			b.Fatalf("got %d events, want 100", len(evs))
		}
	}
}

// BenchmarkOAuthMissing measures what an HTTP upstream's oauth.Transport pays per request
// for a server without tokens (most of them): a read of a missing OAuth record from a
// store that holds a full event log in several sstables, as a running daemon's does.
func BenchmarkOAuthMissing(b *testing.B) {
	s, _ := openStore(b, Options{})
	if err := s.OpenSecrets(b.TempDir() + "/secrets.key"); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	// Flushed in parts, so the lookup has several sstables to search, as in a daemon whose
	// activity log and event log have been written for a while.
	for id := uint64(1); id <= DefaultEventLogSize; id++ {
		if err := s.appendEvent(Event{ID: id, Name: "servers.changed", Data: benchEventData, Time: now}); err != nil {
			b.Fatal(err)
		}
		if id%(DefaultEventLogSize/10) == 0 {
			if err := s.db.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.SetOAuth("tok/other", []byte(`{"access_token":"x"}`)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.OAuth("tok/srv"); err == nil {
			b.Fatal("a record that was never written")
		}
	}
}
