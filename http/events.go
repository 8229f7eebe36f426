package http

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/r3labs/sse/v2"

	"github.com/mcpproxy/mcpproxy/actors"
)

// EventsHub is what /events needs from the hub actor; *actors.HubClient implements it.
type EventsHub interface {
	Subscribe(ctx context.Context, after uint64, replay bool, out actors.EventStreams) (*actors.Subscription, error)
	SubscriberReady(id string)
}

var _ EventsHub = (*actors.HubClient)(nil)

const (
	// subscribeTimeout bounds the hub's answer to a new subscriber.
	subscribeTimeout = 5 * time.Second
	// endGrace is how long the last writes of a stream may take once its request has ended.
	endGrace = 500 * time.Millisecond
	// DefaultEventsBuffer is Options.EventsBuffer's default.
	DefaultEventsBuffer = 256
)

// newEventStreams returns the r3labs server that holds one stream per /events subscriber
// whose connection cannot be taken off net/http (HTTP/2; see events_conn.go for the
// others), stream id = subscriber id (see the hub's doc in actors/hub.go for why one
// each), and writes it to its client. buffer is how many events may wait in one stream before the hub
// drops its subscriber (r3labs adds 64 more in the subscriber channel).
func newEventStreams(hub EventsHub, buffer int) *sse.Server {
	srv := sse.New()
	srv.AutoReplay = false // the hub replays from its own bounded log
	srv.AutoStream = false
	srv.SplitData = true
	srv.BufferSize = buffer
	srv.Headers = map[string]string{"X-Accel-Buffering": "no"}
	// OnSubscribe runs (in its own goroutine) once the stream goroutine has registered the
	// subscriber; from then on a published event reaches it.
	srv.OnSubscribe = func(id string, _ *sse.Subscriber) { hub.SubscriberReady(id) }
	return srv
}

// events handles GET /events: the SSE stream of servers.changed, config.reloaded and
// tools.indexed (API.md). A client that sends Last-Event-ID (or the lastEventId query
// some clients use) first gets the logged events after that id, then live ones. The key,
// Host and Origin checks (middleware) and the Last-Event-ID parse come first; only a
// request that passed them and that the hub accepted is streamed.
func (s *Server) events(c *gin.Context) {
	after, replay, err := lastEventID(c.Request)
	if err != nil {
		s.writeError(c, err)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), subscribeTimeout)
	// An HTTP/1.x connection is taken off net/http (events_conn.go): the subscriber is its
	// own EventStreams. Anything else (HTTP/2, a writer that cannot be hijacked) is served
	// by r3labs, one stream per subscriber.
	var out actors.EventStreams = s.streams
	var conn *eventConn
	if hijackable(c.Writer) && c.Request.ProtoMajor == 1 {
		conn = s.writers.newConn(c.Request)
		out = conn
	}
	sub, err := s.opts.Events.Subscribe(ctx, after, replay, out)
	cancel()
	if err != nil {
		s.writeError(c, err)
		return
	}
	if conn != nil {
		// gin's own Hijack marks the response written, so gin writes nothing after it.
		if conn.serve(c.Writer, c.Writer.Header(), sub, streamLife(c.Request)) {
			return
		}
		// Not hijacked after all: the hub holds conn as the stream; end this subscription
		// and answer the client plainly.
		sub.End()
		s.writeError(c, errorf(actors.CodeInternal, "the event stream could not take the connection"))
		return
	}
	serveEvents(s.streams, sub, c.Writer, c.Request)
}

// serveEvents writes the event stream of sub to w: the SSE headers, the missed events, then
// live events and keepalives, until the request's context ends (the client went away, or
// the daemon cancelled its base context to shut down) or the hub drops the subscriber for
// not reading. w must implement http.Flusher.
//
// It returns only after r3labs has deregistered the subscriber and its stream is removed,
// so no goroutine of this subscription is left behind. A write blocked on a client that
// does not read only returns on a deadline or a closed connection, so when the context
// ends the connection's write deadline is set: now for a subscriber the hub dropped (its
// writes fail at once and net/http then closes the connection), endGrace ahead otherwise
// (shutdown, client gone), which lets a reading client get the end of the chunked body
// while a stalled one is still cut off promptly.
func serveEvents(streams *sse.Server, sub *actors.Subscription, w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	dropped := sub.Dropped()
	stopDrop := context.AfterFunc(dropped, cancel)
	rc := http.NewResponseController(w)
	unblocked := make(chan struct{})
	stopUnblock := context.AfterFunc(ctx, func() {
		// A dropped subscriber is not reading: fail its writes now. Otherwise (the client
		// went away, or shutdown) a short grace lets the final chunk reach a client that
		// does read, so its stream ends cleanly.
		deadline := time.Now().Add(endGrace)
		if dropped.Err() != nil {
			deadline = time.Now()
		}
		_ = rc.SetWriteDeadline(deadline)
		close(unblocked)
	})
	defer func() {
		stopDrop()
		// The deadline func must not touch the response once the handler has returned.
		if !stopUnblock() {
			<-unblocked
		}
		cancel()
		sub.End()
	}()

	if _, ok := w.(http.Flusher); !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	setEventStreamHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	replayEvents(w, sub.Missed())
	if err := rc.Flush(); err != nil || ctx.Err() != nil {
		return
	}

	// r3labs reads the stream id from ?stream=; the copy keeps neither the API key (r3labs
	// keeps the URL) nor Last-Event-ID (r3labs would parse it for its own replay). A shallow
	// copy with no headers at all, not r.Clone: r3labs reads only Last-Event-ID, and a
	// deep copy of every header, held for the stream's life, is a kilobyte per subscriber.
	id := sub.ID()
	sr := r.WithContext(ctx)
	sr.URL = &url.URL{Path: r.URL.Path, RawQuery: "stream=" + id}
	sr.RequestURI = sr.URL.RequestURI()
	sr.Header = http.Header{}
	streams.CreateStream(id)
	streams.ServeHTTP(headersSent{w}, sr)
	// ServeHTTP returns once the subscriber is deregistered (its channel is closed only
	// then), so removing the stream now stops its goroutine without leaking r3labs' close
	// goroutine.
	streams.RemoveStream(id)
}

// hijackable reports whether the connection under gin's writer can be taken over (gin's
// Hijack asserts it without checking).
func hijackable(w http.ResponseWriter) bool {
	u, ok := w.(interface{ Unwrap() http.ResponseWriter })
	if !ok {
		return false
	}
	_, ok = u.Unwrap().(http.Hijacker)
	return ok
}

// headEvents handles HEAD /events: the stream's headers, no body.
func headEvents(c *gin.Context) {
	setEventStreamHeaders(c.Writer.Header())
	c.Status(http.StatusOK)
}

// setEventStreamHeaders sets the headers of an event stream (API.md): also for HEAD
// /events, which answers them without a body.
func setEventStreamHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
}

// replayEvents writes the missed events in r3labs' wire layout (id, data lines, event).
func replayEvents(w http.ResponseWriter, missed []*sse.Event) {
	var buf []byte
	for _, ev := range missed {
		buf = appendWireEvent(buf[:0], ev)
		if _, err := w.Write(buf); err != nil {
			return
		}
	}
}

// appendWireEvent appends one event as r3labs writes it with SplitData: id, data lines,
// event and retry when it has data; a comment line when it has one; the blank line.
func appendWireEvent(b []byte, ev *sse.Event) []byte {
	if len(ev.Data) > 0 {
		b = append(b, "id: "...)
		b = append(b, ev.ID...)
		b = append(b, '\n')
		for line := range bytes.SplitSeq(ev.Data, []byte("\n")) {
			b = append(b, "data: "...)
			b = append(b, line...)
			b = append(b, '\n')
		}
		if len(ev.Event) > 0 {
			b = append(b, "event: "...)
			b = append(b, ev.Event...)
			b = append(b, '\n')
		}
		if len(ev.Retry) > 0 {
			b = append(b, "retry: "...)
			b = append(b, ev.Retry...)
			b = append(b, '\n')
		}
	}
	if len(ev.Comment) > 0 {
		b = append(b, ": "...)
		b = append(b, ev.Comment...)
		b = append(b, '\n')
	}
	return append(b, '\n')
}

// headersSent is the response writer r3labs gets: the status and headers are already out,
// so its own WriteHeader(200) is dropped instead of being logged by net/http as
// superfluous. Header().Set calls on it have no effect, as after any WriteHeader.
type headersSent struct{ w http.ResponseWriter }

func (h headersSent) Header() http.Header         { return h.w.Header() }
func (h headersSent) Write(b []byte) (int, error) { return h.w.Write(b) }
func (h headersSent) WriteHeader(int)             {}
func (h headersSent) Flush()                      { h.w.(http.Flusher).Flush() } // checked by serveEvents
func (h headersSent) Unwrap() http.ResponseWriter { return h.w }

// lastEventID reads the id a reconnecting client last received: the Last-Event-ID header,
// else the lastEventId query parameter. Empty or absent means a fresh client (no replay).
// The server only ever sends decimal ids, so anything else is a client bug and gets 400
// INVALID_ARGUMENT rather than a silent full replay or none: the WHATWG EventSource does
// not retry after a 400, which surfaces the bug instead of looping.
func lastEventID(r *http.Request) (uint64, bool, error) {
	v := strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	if v == "" {
		v = strings.TrimSpace(r.URL.Query().Get("lastEventId"))
	}
	if v == "" {
		return 0, false, nil
	}
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, errorf(actors.CodeInvalidArgument, "Last-Event-ID %q is not an event id (a decimal number)", v)
	}
	return id, true, nil
}
