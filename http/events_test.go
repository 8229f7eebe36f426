package http

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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/store"
)

// TestLastEventID: the header wins over the query; empty means no replay; anything but a
// decimal uint64 is INVALID_ARGUMENT.
func TestLastEventID(t *testing.T) {
	cases := []struct {
		name, header, query string
		after               uint64
		replay, bad         bool
	}{
		{name: "none"},
		{name: "header", header: "42", after: 42, replay: true},
		{name: "header zero", header: "0", after: 0, replay: true},
		{name: "header with spaces", header: " 7 ", after: 7, replay: true},
		{name: "query", query: "lastEventId=9", after: 9, replay: true},
		{name: "header wins", header: "3", query: "lastEventId=9", after: 3, replay: true},
		{name: "empty query", query: "lastEventId=", replay: false},
		{name: "max", header: "18446744073709551615", after: 1<<64 - 1, replay: true},
		{name: "overflow", header: "18446744073709551616", bad: true},
		{name: "negative", header: "-1", bad: true},
		{name: "word", header: "abc", bad: true},
		{name: "bad query", query: "lastEventId=x", bad: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/events?"+c.query, nil)
			if c.header != "" {
				r.Header.Set("Last-Event-ID", c.header)
			}
			after, replay, err := lastEventID(r)
			if c.bad {
				if actors.ErrorCode(err) != actors.CodeInvalidArgument {
					t.Fatalf("err = %v, want INVALID_ARGUMENT", err)
				}
				return
			}
			if err != nil || after != c.after || replay != c.replay {
				t.Fatalf("got (%d, %v, %v), want (%d, %v)", after, replay, err, c.after, c.replay)
			}
		})
	}
}

// fakeHub answers Subscribe with an error and records the call (an EventsHub double; the
// streaming path is tested with the real hub below and in test/).
type fakeHub struct {
	calls  int
	after  uint64
	replay bool
	err    error
}

func (f *fakeHub) SubscriberReady(string) {}

func (f *fakeHub) Subscribe(_ context.Context, after uint64, replay bool, _ actors.EventStreams) (*actors.Subscription, error) {
	f.calls++
	f.after, f.replay = after, replay
	return nil, f.err
}

// TestEventsRoutes: auth (401), a bad Last-Event-ID (400, the hub not asked), a hub that
// is gone (503), and HEAD answering the stream's headers without a body.
func TestEventsRoutes(t *testing.T) {
	hub := &fakeHub{err: actors.Errorf(actors.CodeUnavailable, "the proxy is shutting down")}
	srv := New(Options{Settings: Settings{APIKey: "k"}, Events: hub})
	cases := []struct {
		name, method, target string
		headers              map[string]string
		status               int
		code                 string
		calls                int
	}{
		{"no key", "GET", "/events", nil, 401, "UNAUTHORIZED", 0},
		{"wrong key", "GET", "/events?apikey=x", nil, 401, "UNAUTHORIZED", 0},
		{"head no key", "HEAD", "/events", nil, 401, "", 0},
		{"bad id", "GET", "/events?apikey=k", map[string]string{"Last-Event-ID": "abc"}, 400, "INVALID_ARGUMENT", 0},
		{"hub gone", "GET", "/events", map[string]string{"X-API-Key": "k", "Last-Event-ID": "5"}, 503, "UNAVAILABLE", 1},
		{"head", "HEAD", "/events?apikey=k", nil, 200, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hub.calls = 0
			r := httptest.NewRequest(c.method, c.target, nil)
			for k, v := range c.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			srv.Handler().ServeHTTP(w, r)
			if w.Code != c.status || !strings.Contains(w.Body.String(), c.code) || hub.calls != c.calls {
				t.Fatalf("%d %s (hub calls %d), want %d %s (%d calls)", w.Code, w.Body, hub.calls, c.status, c.code, c.calls)
			}
			if c.name == "hub gone" && (hub.after != 5 || !hub.replay) {
				t.Fatalf("hub asked with (%d, %v)", hub.after, hub.replay)
			}
			if c.method == "HEAD" && c.status == 200 {
				for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
					if got := w.Header().Get(k); got != want {
						t.Errorf("HEAD header %s = %q, want %q", k, got, want)
					}
				}
				if w.Body.Len() != 0 {
					t.Errorf("HEAD body %q", w.Body)
				}
			}
		})
	}
}

// hubKey is the API key of the hub harness's server.
const hubKey = "k"

// ignoreDeadLetterThrottle ignores protoactor's dead-letter log throttle, a goroutine that
// ends by itself a second after a dead letter (here: a stream that ends after the hub
// stopped tells the gone hub so).
var ignoreDeadLetterThrottle = goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1")

// hubHarness runs a real hub on its own actor system behind this package's Server (its
// /events route, with its key) in an httptest server.
type hubHarness struct {
	once sync.Once
	sys  *actor.ActorSystem
	pid  *actor.PID
	hc   *actors.HubClient
	srv  *httptest.Server
	// cancelBase cancels the test server's base context, as the daemon does at shutdown.
	cancelBase context.CancelFunc
}

// startHub starts a hub with opts; buffer is Options.EventsBuffer (0: the default).
func startHub(t *testing.T, opts actors.HubOptions, buffer int) *hubHarness {
	t.Helper()
	return startHubOn(t, opts, buffer, false)
}

// startHubOn is startHub, with the test server on TLS with HTTP/2 when h2 is set.
func startHubOn(t *testing.T, opts actors.HubOptions, buffer int, h2 bool) *hubHarness {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	h := &hubHarness{sys: actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))}
	h.pid = h.sys.Root.Spawn(actors.NewHubProps(opts))
	h.hc = actors.NewHubClient(h.sys, h.pid)
	base, cancel := context.WithCancel(context.Background())
	h.cancelBase = cancel
	s := New(Options{Settings: Settings{APIKey: hubKey}, Events: h.hc, EventsBuffer: buffer})
	h.srv = httptest.NewUnstartedServer(s.Handler())
	// As in the daemon: cancelling the base context ends every stream (shutdown).
	h.srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	h.srv.Config.ConnContext = ConnContext
	if h2 {
		h.srv.EnableHTTP2 = true
		h.srv.StartTLS()
	} else {
		h.srv.Start()
	}
	t.Cleanup(h.stop)
	return h
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
	h.sys.Root.Send(h.pid, actors.Event{Name: name, Data: b})
}

func (h *hubHarness) stats(t *testing.T) actors.HubStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := h.hc.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (h *hubHarness) waitStats(t *testing.T, what string, cond func(actors.HubStats) bool) actors.HubStats {
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
	req, _ := http.NewRequest("GET", h.srv.URL+"/events", nil)
	req.Header.Set("X-API-Key", hubKey)
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

// rawStream opens /events on a raw connection that the test does not read (a stalled
// client), with extra header lines; the connection is closed at cleanup.
func (h *hubHarness) rawStream(t *testing.T, headers string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", h.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /events?apikey=%s HTTP/1.1\r\nHost: x\r\n%s\r\n", hubKey, headers)
	return conn
}

// TestHubKeepaliveAndWire: a subscriber gets ": keepalive" comments at the configured
// interval and events in the id/data/event layout; empty data goes out as {}.
func TestHubKeepaliveAndWire(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), ignoreDeadLetterThrottle)
	h := startHub(t, actors.HubOptions{KeepAlive: 30 * time.Millisecond}, 0)
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
	h.sys.Root.Send(h.pid, actors.Event{Name: "empty"})
	expectLine(t, lines, "id: 2")
	if l := <-lines; l != "data: {}" {
		t.Fatalf("empty data went out as %q", l)
	}
	expectLine(t, lines, ": keepalive") // the stream is still open after it
	closeFn()
	h.waitStats(t, "the subscriber to go", func(st actors.HubStats) bool { return st.Subscribers == 0 })
	if st := h.stats(t); st.Dropped != 0 || st.Published != 2 || st.LastID != 2 {
		t.Fatalf("stats %+v", st)
	}
	h.stop()
}

// TestHubIDsAndReplayFromStore: a hub on a store with an event log continues its ids and
// replays the events it holds.
func TestHubIDsAndReplayFromStore(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var logged []store.Event
	for i := range 3 {
		logged = append(logged, store.Event{ID: uint64(i + 1), Name: "n", Data: []byte(fmt.Sprintf(`{"i":%d}`, i)), Time: time.Now()})
	}
	if err := st.AppendEvents(logged); err != nil {
		t.Fatal(err)
	}
	if err := st.SetEventsClean(true); err != nil {
		t.Fatal(err)
	}

	h2 := startHub(t, actors.HubOptions{Store: st}, 0)
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
	h := startHub(t, actors.HubOptions{KeepAlive: 50 * time.Millisecond, ReplayTimeout: 100 * time.Millisecond}, 0)
	pad := strings.Repeat("x", 32<<10)
	for i := range 300 { // ~10 MB of replay, far more than the socket buffers
		h.publish("big", map[string]any{"i": i, "pad": pad})
	}
	h.waitStats(t, "300 events", func(s actors.HubStats) bool { return s.LastID == 300 })

	conn := h.rawStream(t, "Last-Event-ID: 0\r\n")
	h.waitStats(t, "the stuck subscriber to be dropped", func(s actors.HubStats) bool { return s.Dropped == 1 && s.Subscribers == 0 })
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
	h := startHub(t, actors.HubOptions{}, 2)
	good, _ := h.lines(t, nil)
	h.rawStream(t, "")
	h.waitStats(t, "2 subscribers", func(s actors.HubStats) bool { return s.Subscribers == 2 })

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
	h := startHub(t, actors.HubOptions{}, 4096)
	h.rawStream(t, "")
	h.waitStats(t, "the subscriber", func(s actors.HubStats) bool { return s.Subscribers == 1 })
	pad := strings.Repeat("x", 32<<10)
	for range 600 { // ~19 MB: far beyond the socket buffers, so the writer blocks
		h.publish("big", map[string]any{"pad": pad})
	}
	h.waitStats(t, "600 events", func(s actors.HubStats) bool { return s.LastID == 600 })
	if st := h.stats(t); st.Dropped != 0 {
		t.Fatalf("dropped before shutdown: %+v", st)
	}
	start := time.Now()
	h.cancelBase()
	h.waitStats(t, "the stream to end", func(s actors.HubStats) bool { return s.Subscribers == 0 })
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the blocked stream took %s to end", took)
	}
	h.stop()
}

// rawSubscriber is an /events client on a plain connection, read by the test itself so
// that it adds no goroutine to the process.
type rawSubscriber struct {
	conn net.Conn
	r    *bufio.Reader
}

// openRaw sends GET /events with proto (HTTP/1.1 or HTTP/1.0) and reads the status and
// headers.
func (h *hubHarness) openRaw(t *testing.T, proto string) (*rawSubscriber, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", h.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /events?apikey=%s %s\r\nHost: x\r\n\r\n", hubKey, proto)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The body is read below from r directly: chunk sizes and all, as they are on the wire.
	return &rawSubscriber{conn: conn, r: r}, resp
}

// event reads the next chunk that is not a keepalive and returns its lines, the first
// being the chunk's size (the raw body is chunked: HTTP/1.1).
func (s *rawSubscriber) event(t *testing.T) []string {
	t.Helper()
	for {
		size := s.line(t)
		n, err := strconv.ParseUint(size, 16, 32)
		if err != nil || n == 0 {
			t.Fatalf("%q is not the size of a chunk with data", size)
		}
		body := make([]byte, n+2)
		if _, err := io.ReadFull(s.r, body); err != nil || string(body[n:]) != "\r\n" {
			t.Fatalf("chunk of %d: %q, %v", n, body, err)
		}
		if !strings.HasPrefix(string(body), ": keepalive") {
			return append([]string{size}, strings.Split(string(body[:n]), "\n")...)
		}
	}
}

// line reads one line of the raw body (bounded by the connection's read deadline).
func (s *rawSubscriber) line(t *testing.T) string {
	t.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := s.r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the stream: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// TestEventsConnectionHoldsNoGoroutine: an HTTP/1.1 subscriber is taken off net/http once
// it is live, so 50 of them, each with an event received, leave the process with no
// goroutine for them (net/http and r3labs held four each); the stream is chunked and
// closes after its end. A client that goes away is noticed at the next keepalive.
func TestEventsConnectionHoldsNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), ignoreDeadLetterThrottle)
	h := startHub(t, actors.HubOptions{KeepAlive: 50 * time.Millisecond}, 0)
	h.waitStats(t, "the hub", func(actors.HubStats) bool { return true })
	before := runtime.NumGoroutine()
	const n = 50
	subs := make([]*rawSubscriber, n)
	for i := range subs {
		var resp *http.Response
		subs[i], resp = h.openRaw(t, "HTTP/1.1")
		hdr := resp.Header
		if hdr.Get("Content-Type") != "text/event-stream" || hdr.Get("Cache-Control") != "no-cache" ||
			hdr.Get("X-Accel-Buffering") != "no" || !resp.Close || fmt.Sprint(resp.TransferEncoding) != "[chunked]" {
			t.Fatalf("headers %v (close %v, %v)", hdr, resp.Close, resp.TransferEncoding)
		}
	}
	h.waitStats(t, "50 subscribers", func(s actors.HubStats) bool { return s.Subscribers == n })
	h.publish("servers.changed", map[string]string{"reason": "state"})
	for i, s := range subs {
		got := s.event(t)
		if want := []string{got[0], "id: 1", `data: {"reason":"state"}`, "event: servers.changed", "", ""}; !slices.Equal(got, want) {
			t.Fatalf("subscriber %d read %q, want %q", i, got, want)
		}
	}
	// Writers end when they have nothing to write; the count settles at what it was.
	deadline := time.Now().Add(10 * time.Second)
	for extra := runtime.NumGoroutine() - before; extra > n/10; extra = runtime.NumGoroutine() - before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines more than before %d live subscribers", extra, n)
		}
		runtime.Gosched()
	}
	for _, s := range subs {
		s.conn.Close()
	}
	h.waitStats(t, "the closed subscribers to go", func(s actors.HubStats) bool { return s.Subscribers == 0 })
	if st := h.stats(t); st.Dropped != 0 {
		t.Fatalf("stats %+v: a client that went away is not a drop", st)
	}
	h.stop()
}

// TestEventsHTTP10: an HTTP/1.0 client gets the events unchunked, and at shutdown the
// connection closes after them.
func TestEventsHTTP10(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), ignoreDeadLetterThrottle)
	h := startHub(t, actors.HubOptions{}, 0)
	s, resp := h.openRaw(t, "HTTP/1.0")
	if len(resp.TransferEncoding) != 0 || !resp.Close {
		t.Fatalf("headers %v (close %v, %v)", resp.Header, resp.Close, resp.TransferEncoding)
	}
	h.waitStats(t, "the subscriber", func(s actors.HubStats) bool { return s.Subscribers == 1 })
	h.publish("n", map[string]int{"i": 1})
	for _, want := range []string{"id: 1", `data: {"i":1}`, "event: n", ""} {
		if l := s.line(t); l != want {
			t.Fatalf("line %q, want %q", l, want)
		}
	}
	h.cancelBase()
	if rest, err := io.ReadAll(s.r); err != nil || len(rest) != 0 {
		t.Fatalf("after shutdown: %q, %v; want EOF", rest, err)
	}
	h.waitStats(t, "the stream to end", func(s actors.HubStats) bool { return s.Subscribers == 0 })
	h.stop()
}

// TestEventsOverHTTP2: a connection that cannot be taken over (HTTP/2) is still served, by
// r3labs: replay, live events, and the subscriber gone when the client closes.
func TestEventsOverHTTP2(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(), ignoreDeadLetterThrottle)
	h := startHubOn(t, actors.HubOptions{}, 0, true)
	h.publish("n", map[string]int{"i": 1})
	h.waitStats(t, "the event", func(s actors.HubStats) bool { return s.LastID == 1 })
	req, _ := http.NewRequest("GET", h.srv.URL+"/events", nil)
	req.Header.Set("X-API-Key", hubKey)
	req.Header.Set("Last-Event-ID", "0")
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%s %d %v", resp.Proto, resp.StatusCode, resp.Header)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	if l := expectLine(t, lines, "id: "); l != "id: 1" {
		t.Fatalf("replayed %q", l)
	}
	h.waitStats(t, "the subscriber", func(s actors.HubStats) bool { return s.Subscribers == 1 })
	h.publish("n", map[string]int{"i": 2})
	if l := expectLine(t, lines, "id: "); l != "id: 2" {
		t.Fatalf("live %q", l)
	}
	resp.Body.Close()
	for range lines {
	}
	h.waitStats(t, "the subscriber to go", func(s actors.HubStats) bool { return s.Subscribers == 0 })
	h.srv.Client().CloseIdleConnections()
	h.stop()
}
