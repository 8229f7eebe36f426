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
