package actors

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

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

// ignoreDeadLetterThrottle ignores protoactor's dead-letter log throttle, a goroutine that
// ends by itself a second after a dead letter (here: a Serve that ends after the hub
// stopped tells the gone hub so).
var ignoreDeadLetterThrottle = goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1")

// hubHarness runs a hub on its own actor system behind an httptest server that serves
// /events the way http/events.go does (without auth).
type hubHarness struct {
	once sync.Once
	sys  *actor.ActorSystem
	pid  *actor.PID
	hc   *HubClient
	srv  *httptest.Server
	// cancelBase cancels the test server's base context, as the daemon does at shutdown.
	cancelBase context.CancelFunc
}

func startHub(t *testing.T, opts HubOptions) *hubHarness {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	h := &hubHarness{sys: actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))}
	h.pid = h.sys.Root.Spawn(NewHubProps(opts))
	h.hc = NewHubClient(h.sys, h.pid)
	base, cancel := context.WithCancel(context.Background())
	h.cancelBase = cancel
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var after uint64
		replay := false
		if v := r.Header.Get("Last-Event-ID"); v != "" {
			after, _ = strconv.ParseUint(v, 10, 64)
			replay = true
		}
		sub, err := h.hc.Subscribe(r.Context(), after, replay)
		if err != nil {
			http.Error(w, err.Error(), StatusHint(err))
			return
		}
		sub.Serve(w, r)
	}))
	// As in the daemon: cancelling the base context ends every stream (shutdown).
	h.srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	h.srv.Start()
	t.Cleanup(h.stop)
	return h
}

// StatusHint is a rough status for test handlers (the real table is in package http).
func StatusHint(err error) int {
	if ErrorCode(err) == CodeUnavailable {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func (h *hubHarness) stop() {
	h.once.Do(func() {
		// Stopping the hub drops its subscribers, so the test server's handlers return and
		// Close does not wait for open streams.
		_ = h.sys.Root.PoisonFuture(h.pid).Wait()
		h.cancelBase()
		h.srv.Close()
		h.sys.Shutdown()
	})
}

func (h *hubHarness) publish(name string, data any) {
	b, _ := json.Marshal(data)
	h.sys.Root.Send(h.pid, Event{Name: name, Data: b})
}

func (h *hubHarness) stats(t *testing.T) HubStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := h.hc.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (h *hubHarness) waitStats(t *testing.T, what string, cond func(HubStats) bool) HubStats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		st := h.stats(t)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v", what, st)
		}
		<-tick.C
	}
}

// lines opens /events and returns its body lines on a channel (closed at the end).
func (h *hubHarness) lines(t *testing.T, headers map[string]string) (<-chan string, func()) {
	t.Helper()
	req, _ := http.NewRequest("GET", h.srv.URL, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	out := make(chan string, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			out <- sc.Text()
		}
	}()
	closeFn := func() {
		resp.Body.Close()
		<-done
	}
	t.Cleanup(closeFn)
	return out, closeFn
}

// expectLine reads lines until one has the prefix, failing after a bound.
func expectLine(t *testing.T, lines <-chan string, prefix string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended before a line starting with %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("no line starting with %q", prefix)
		}
	}
}

// TestHubKeepaliveAndWire: a subscriber gets ": keepalive" comments at the configured
// interval and events in the id/data/event layout; empty data goes out as {}.
func TestHubKeepaliveAndWire(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), ignoreDeadLetterThrottle)
	h := startHub(t, HubOptions{KeepAlive: 30 * time.Millisecond})
	lines, closeFn := h.lines(t, nil)
	expectLine(t, lines, ": keepalive")
	h.publish("servers.changed", map[string]string{"reason": "state"})
	if l := expectLine(t, lines, "id: "); l != "id: 1" {
		t.Fatalf("id line %q", l)
	}
	if l := <-lines; l != `data: {"reason":"state"}` {
		t.Fatalf("data line %q", l)
	}
	if l := <-lines; l != "event: servers.changed" {
		t.Fatalf("event line %q", l)
	}
	h.sys.Root.Send(h.pid, Event{Name: "empty"})
	expectLine(t, lines, "id: 2")
	if l := <-lines; l != "data: {}" {
		t.Fatalf("empty data went out as %q", l)
	}
	expectLine(t, lines, ": keepalive") // the stream is still open after it
	closeFn()
	h.waitStats(t, "the subscriber to go", func(st HubStats) bool { return st.Subscribers == 0 })
	if st := h.stats(t); st.Dropped != 0 || st.Published != 2 || st.LastID != 2 {
		t.Fatalf("stats %+v", st)
	}
	h.stop()
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

// TestHubIDsAndReplayFromStore: a new hub on the same store continues the ids and replays
// the events the previous one logged.
func TestHubIDsAndReplayFromStore(t *testing.T) {
	st := storeWithThreeEvents(t)

	h2 := startHub(t, HubOptions{Store: st})
	if s := h2.stats(t); s.LastID != 3 {
		t.Fatalf("a new hub starts at id %d, want 3", s.LastID)
	}
	lines, _ := h2.lines(t, map[string]string{"Last-Event-ID": "1"})
	for _, want := range []string{"id: 2", `data: {"i":1}`, "event: n", "", "id: 3", `data: {"i":2}`, "event: n", ""} {
		if l := <-lines; l != want {
			t.Fatalf("replay line %q, want %q", l, want)
		}
	}
	h2.publish("n", map[string]int{"i": 3})
	if l := expectLine(t, lines, "id: "); l != "id: 4" {
		t.Fatalf("live event after replay: %q", l)
	}
}

// TestHubDropsSubscriberStuckInReplay: a client that asks for a replay and never reads it
// stays pending; the hub drops it after ReplayTimeout and its connection closes.
func TestHubDropsSubscriberStuckInReplay(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), ignoreDeadLetterThrottle)
	h := startHub(t, HubOptions{KeepAlive: 50 * time.Millisecond, ReplayTimeout: 100 * time.Millisecond})
	pad := strings.Repeat("x", 32<<10)
	for i := range 300 { // ~10 MB of replay, far more than the socket buffers
		h.publish("big", map[string]any{"i": i, "pad": pad})
	}
	h.waitStats(t, "300 events", func(s HubStats) bool { return s.LastID == 300 })

	conn, err := net.Dial("tcp", h.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 0\r\n\r\n")
	h.waitStats(t, "the stuck subscriber to be dropped", func(s HubStats) bool { return s.Dropped == 1 && s.Subscribers == 0 })
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, conn); err != nil {
		t.Fatalf("the dropped connection was not closed: %v", err)
	}
	h.stop()
}

// TestHubStalledLiveSubscriber: with a small buffer, a live subscriber that stops reading
// is dropped on the first event that finds its buffer full, and the others still get it.
func TestHubStalledLiveSubscriber(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), ignoreDeadLetterThrottle)
	h := startHub(t, HubOptions{Buffer: 2})
	good, _ := h.lines(t, nil)
	conn, err := net.Dial("tcp", h.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	h.waitStats(t, "2 subscribers", func(s HubStats) bool { return s.Subscribers == 2 })

	pad := strings.Repeat("x", 32<<10)
	var n int
	for n = 1; n <= 2000; n++ {
		h.publish("big", map[string]any{"pad": pad})
		if l := expectLine(t, good, "id: "); l != "id: "+strconv.Itoa(n) {
			t.Fatalf("good subscriber got %q, want id %d", l, n)
		}
		if h.stats(t).Dropped == 1 {
			break
		}
	}
	st := h.stats(t)
	if st.Dropped != 1 || st.DroppedEvents != 1 || st.Subscribers != 1 {
		t.Fatalf("after %d events: %+v", n, st)
	}
	h.publish("after", map[string]int{"n": n})
	expectLine(t, good, "event: after")
	h.stop()
}

// TestHubShutdownUnblocksStalledWriter: at shutdown (the base context cancelled) a stream
// whose write is blocked on a client that does not read ends within the grace, leaving no
// goroutine; a big buffer keeps the hub from dropping it first.
func TestHubShutdownUnblocksStalledWriter(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), ignoreDeadLetterThrottle)
	h := startHub(t, HubOptions{Buffer: 4096})
	conn, err := net.Dial("tcp", h.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	h.waitStats(t, "the subscriber", func(s HubStats) bool { return s.Subscribers == 1 })
	pad := strings.Repeat("x", 32<<10)
	for range 600 { // ~19 MB: far beyond the socket buffers, so the writer blocks
		h.publish("big", map[string]any{"pad": pad})
	}
	h.waitStats(t, "600 events", func(s HubStats) bool { return s.LastID == 600 })
	if st := h.stats(t); st.Dropped != 0 {
		t.Fatalf("dropped before shutdown: %+v", st)
	}
	start := time.Now()
	h.cancelBase()
	h.waitStats(t, "the stream to end", func(s HubStats) bool { return s.Subscribers == 0 })
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the blocked stream took %s to end", took)
	}
	h.stop()
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
	if s := h2.stats(t); s.LastID < 3+persistBacklog {
		t.Fatalf("after an unclean stop the hub starts at id %d, which could reuse ids sent before the crash", s.LastID)
	}
}
