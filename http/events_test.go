package http

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mcpproxy/mcpproxy/actors"
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
// streaming path is tested with the real hub in actors and test/).
type fakeHub struct {
	calls  int
	after  uint64
	replay bool
	err    error
}

func (f *fakeHub) Subscribe(_ context.Context, after uint64, replay bool) (*actors.Subscription, error) {
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
