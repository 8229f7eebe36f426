package actors

import (
	"bytes"
	"context"
	"net/http"
	"time"

	"github.com/r3labs/sse/v2"
)

// endGrace is how long the last writes of a stream may take once its request has ended.
const endGrace = 500 * time.Millisecond

// Subscription is one /events client, from HubClient.Subscribe to the end of Serve. It is
// used by one goroutine (the request's handler).
type Subscription struct {
	client  *HubClient
	id      string
	srv     *sse.Server
	missed  []*sse.Event
	dropCtx context.Context
	drop    context.CancelFunc
}

// ID is the subscriber id the hub knows it by (also its r3labs stream id).
func (s *Subscription) ID() string { return s.id }

// Serve writes the event stream to w: the SSE headers, the missed events, then live events
// and keepalives, until the request's context ends (the client went away, or the daemon
// cancelled its base context to shut down) or the hub drops the subscriber for not
// reading. w must implement http.Flusher. Call Serve once.
//
// Serve returns only after r3labs has deregistered the subscriber and its stream is
// removed, so no goroutine of this subscription is left behind. A write blocked on a client
// that does not read only returns on a deadline or a closed connection, so when the context
// ends Serve sets the connection's write deadline: now for a subscriber the hub dropped
// (its writes fail at once and net/http then closes the connection), endGrace ahead
// otherwise (shutdown, client gone), which lets a reading client get the end of the
// chunked body while a stalled one is still cut off promptly.
func (s *Subscription) Serve(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	stopDrop := context.AfterFunc(s.dropCtx, cancel)
	rc := http.NewResponseController(w)
	unblocked := make(chan struct{})
	stopUnblock := context.AfterFunc(ctx, func() {
		// A dropped subscriber is not reading: fail its writes now. Otherwise (the client
		// went away, or shutdown) a short grace lets the final chunk reach a client that
		// does read, so its stream ends cleanly.
		deadline := time.Now().Add(endGrace)
		if s.dropCtx.Err() != nil {
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
		s.drop()
		s.client.sys.Root.Send(s.client.hub, unsubscribed{ID: s.id})
	}()

	if _, ok := w.(http.Flusher); !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	SetEventStreamHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	s.replay(w)
	if err := rc.Flush(); err != nil || ctx.Err() != nil {
		return
	}

	// r3labs reads the stream id from ?stream=; the copy keeps neither the API key (r3labs
	// keeps the URL) nor Last-Event-ID (r3labs would parse it for its own replay).
	sr := r.Clone(ctx)
	u := *r.URL
	u.RawQuery = "stream=" + s.id
	sr.URL = &u
	sr.RequestURI = u.RequestURI()
	sr.Header.Del("Last-Event-ID")
	s.srv.CreateStream(s.id)
	s.srv.ServeHTTP(headersSent{w}, sr)
	// ServeHTTP returns once the subscriber is deregistered (its channel is closed only
	// then), so removing the stream now stops its goroutine without leaking r3labs' close
	// goroutine.
	s.srv.RemoveStream(s.id)
}

// SetEventStreamHeaders sets the headers of an event stream (API.md): also for HEAD
// /events, which answers them without a body.
func SetEventStreamHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
}

// replay writes the missed events in r3labs' wire layout (id, data lines, event).
func (s *Subscription) replay(w http.ResponseWriter) {
	var buf []byte
	for _, ev := range s.missed {
		buf = appendWireEvent(buf[:0], ev)
		if _, err := w.Write(buf); err != nil {
			return
		}
	}
}

// appendWireEvent appends one event as r3labs writes it with SplitData.
func appendWireEvent(b []byte, ev *sse.Event) []byte {
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
	return append(b, '\n')
}

// headersSent is the response writer r3labs gets: the status and headers are already out,
// so its own WriteHeader(200) is dropped instead of being logged by net/http as
// superfluous. Header().Set calls on it have no effect, as after any WriteHeader.
type headersSent struct{ w http.ResponseWriter }

func (h headersSent) Header() http.Header         { return h.w.Header() }
func (h headersSent) Write(b []byte) (int, error) { return h.w.Write(b) }
func (h headersSent) WriteHeader(int)             {}
func (h headersSent) Flush()                      { h.w.(http.Flusher).Flush() } // checked by Serve
func (h headersSent) Unwrap() http.ResponseWriter { return h.w }
