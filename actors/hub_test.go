package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/r3labs/sse/v2"

	"github.com/mcpproxy/mcpproxy/actors/store"
)

// TestHubRingAfter: the replay ring returns exactly the events after an id, everything it
// holds for an older id, nothing for a newer one, and keeps only the newest ReplayLimit.
func TestHubRingAfter(t *testing.T) {
	h := &hub{opts: HubOptions{ReplayLimit: 10}}
	for id := uint64(1); id <= 37; id++ { // crosses several trims (at 2*limit)
		h.remember(id, newWireEvent(id, "e", nil))
	}
	for _, tc := range []struct {
		after      uint64
		first, num int
	}{
		{after: 0, first: 28, num: 10},
		{after: 27, first: 28, num: 10},
		{after: 30, first: 31, num: 7},
		{after: 36, first: 37, num: 1},
		{after: 37, num: 0},
		{after: 1000, num: 0},
	} {
		t.Run(fmt.Sprint("after ", tc.after), func(t *testing.T) {
			got := h.after(tc.after)
			if len(got) != tc.num {
				t.Fatalf("got %d events, want %d", len(got), tc.num)
			}
			for i, ev := range got {
				if want := strconv.Itoa(tc.first + i); string(ev.ID) != want {
					t.Fatalf("event %d has id %s, want %s", i, ev.ID, want)
				}
			}
		})
	}
	if len(h.ring) >= 2*h.opts.ReplayLimit {
		t.Fatalf("ring holds %d entries", len(h.ring))
	}
}

// TestNewWireEventNeverEmpty: an event with empty data would close r3labs streams.
func TestNewWireEventNeverEmpty(t *testing.T) {
	for _, data := range []string{"", " ", "\n"} {
		if ev := newWireEvent(1, "x", []byte(data)); string(ev.Data) != "{}" {
			t.Errorf("data %q became %q", data, ev.Data)
		}
	}
	if ev := newWireEvent(7, "x", []byte(`{"a":1}`)); string(ev.Data) != `{"a":1}` || string(ev.ID) != "7" {
		t.Errorf("event %+v", ev)
	}
}

// hubHarness runs a hub on its own actor system. Serving its subscribers over HTTP is
// tested in http/events_test.go.
type hubHarness struct {
	once sync.Once
	sys  *actor.ActorSystem
	pid  *actor.PID
	hc   *HubClient
}

func startHub(t *testing.T, opts HubOptions) *hubHarness {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	h := &hubHarness{sys: actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))}
	h.pid = h.sys.Root.Spawn(NewHubProps(opts))
	h.hc = NewHubClient(h.sys, h.pid)
	t.Cleanup(h.stop)
	return h
}

func (h *hubHarness) stop() {
	h.once.Do(func() {
		_ = h.sys.Root.PoisonFuture(h.pid).Wait()
		h.sys.Shutdown()
	})
}

func (h *hubHarness) publish(name string, data any) {
	b, _ := json.Marshal(data)
	h.sys.Root.Send(h.pid, Event{Name: name, Data: b})
}

func (h *hubHarness) waitStats(t *testing.T, what string, cond func(HubStats) bool) HubStats {
	t.Helper()
	var st HubStats
	waitFor(t, what, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var err error
		if st, err = h.hc.Stats(ctx); err != nil {
			t.Fatal(err)
		}
		return cond(st)
	})
	return st
}

// memStreams is an EventStreams that keeps what the hub queues in memory, in place of the
// r3labs server of http/events.go, so that the hub's side of a subscription (replay,
// pending until ready, drop on a full buffer) is checked without HTTP. full makes every
// TryPublish fail as a full buffer does; gone, as a removed stream does.
type memStreams struct {
	mu         sync.Mutex
	ids        map[string][]string
	full, gone bool
}

func (m *memStreams) TryPublish(id string, ev *sse.Event) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.full || m.gone {
		return false
	}
	if m.ids == nil {
		m.ids = map[string][]string{}
	}
	m.ids[id] = append(m.ids[id], string(ev.ID))
	return true
}

func (m *memStreams) StreamExists(string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.gone
}

func (m *memStreams) got(id string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.ids[id], ",")
}

func (m *memStreams) set(full, gone bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.full, m.gone = full, gone
}

// TestHubSubscription: the hub's side of a subscriber: Missed holds the replay after the
// client's id; what is published while the subscriber is pending is caught up at
// SubscriberReady, then live events follow; a full buffer drops it (Dropped ends, counted
// once); a stream that is gone is not counted as a drop; End unregisters.
func TestHubSubscription(t *testing.T) {
	h := startHub(t, HubOptions{})
	for i := range 2 {
		h.publish("n", map[string]int{"i": i})
	}
	h.waitStats(t, "2 events", func(s HubStats) bool { return s.LastID == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := &memStreams{}
	sub, err := h.hc.Subscribe(ctx, 1, true, out)
	if err != nil {
		t.Fatal(err)
	}
	if m := sub.Missed(); len(m) != 1 || string(m[0].ID) != "2" {
		t.Fatalf("missed %v, want event 2", m)
	}
	h.publish("n", map[string]int{"i": 2})
	h.waitStats(t, "event 3", func(s HubStats) bool { return s.LastID == 3 })
	if got := out.got(sub.ID()); got != "" {
		t.Fatalf("a pending subscriber was sent %s", got)
	}
	h.hc.SubscriberReady(sub.ID())
	h.publish("n", map[string]int{"i": 3})
	waitFor(t, "events 3 and 4", func() bool { return out.got(sub.ID()) == "3,4" })
	if sub.Dropped().Err() != nil {
		t.Fatal("dropped while reading")
	}

	out.set(true, false)
	h.publish("n", map[string]int{"i": 4})
	select {
	case <-sub.Dropped().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a full buffer did not drop the subscriber")
	}
	st := h.waitStats(t, "the drop", func(s HubStats) bool { return s.Subscribers == 0 })
	if st.Dropped != 1 || st.DroppedEvents != 1 {
		t.Fatalf("after a drop: %+v", st)
	}
	sub.End()

	gone := &memStreams{}
	sub2, err := h.hc.Subscribe(ctx, 0, false, gone)
	if err != nil {
		t.Fatal(err)
	}
	h.hc.SubscriberReady(sub2.ID())
	h.publish("n", map[string]int{"i": 5})
	waitFor(t, "event 6", func() bool { return gone.got(sub2.ID()) == "6" })
	gone.set(false, true)
	h.publish("n", map[string]int{"i": 6})
	st = h.waitStats(t, "the gone subscriber to go", func(s HubStats) bool { return s.Subscribers == 0 })
	if st.Dropped != 1 || st.DroppedEvents != 1 || sub2.Dropped().Err() != nil {
		t.Fatalf("a stream that went away counted as a drop: %+v", st)
	}
	sub2.End()
}

// storeWithThreeEvents opens a store, lets a hub publish three events into it and stops
// that hub cleanly. The store is closed at cleanup.
func storeWithThreeEvents(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := startHub(t, HubOptions{Store: st})
	for i := range 3 {
		h.publish("n", map[string]int{"i": i})
	}
	h.waitStats(t, "3 events", func(s HubStats) bool { return s.LastID == 3 })
	h.stop()
	return st
}

// TestHubSkipsIDsAfterUncleanStop: when the previous hub did not stop cleanly (the daemon was
// killed with events still queued for the disk), a new hub must not hand out ids that may
// already have reached clients.
func TestHubSkipsIDsAfterUncleanStop(t *testing.T) {
	st := storeWithThreeEvents(t)
	if clean, err := st.EventsClean(); err != nil || !clean {
		t.Fatalf("after a clean stop EventsClean = %v, %v", clean, err)
	}
	// What a kill -9 leaves: the mark a running hub sets, never cleared.
	if err := st.SetEventsClean(false); err != nil {
		t.Fatal(err)
	}
	h2 := startHub(t, HubOptions{Store: st})
	defer h2.stop()
	if s := h2.waitStats(t, "the hub", func(HubStats) bool { return true }); s.LastID < 3+persistBacklog {
		t.Fatalf("after an unclean stop the hub starts at id %d, which could reuse ids sent before the crash", s.LastID)
	}
}
