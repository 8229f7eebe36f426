package http

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/r3labs/sse/v2"

	"github.com/mcpproxy/mcpproxy/actors"
)

// How a hijacked /events connection is held.
//
// Served by net/http and r3labs (the fallback, events.go), a subscriber costs four
// goroutines (the request's handler, net/http's background read, the r3labs stream's loop
// and its context watcher) and net/http's buffers: about 50 KB of heap and stacks each,
// for a connection that is idle almost all the time. An HTTP/1.x /events connection is
// therefore taken off net/http once the request has passed every check (key, Host and
// Origin, Last-Event-ID) and the hub has accepted the subscriber: the handler hijacks it,
// writes the status, the headers and the replay itself, tells the hub the subscriber is
// ready and returns. From then on an idle subscriber has no goroutine and no buffer: an
// eventConn (the connection, the hub's Subscription and the frames waiting for it) and
// the kernel's socket.
//
// Writing: the hub queues each event on the connection (TryPublish, never blocking, from
// the hub's goroutine). Every event is encoded once for all subscribers (eventWriters.frame)
// as an HTTP/1.1 chunk, so a write is one syscall of shared bytes. A connection with
// frames waiting is put on the ready list of a few writer goroutines (eventWriters, at
// most GOMAXPROCS, started when there is work and ended when there is none), which write
// without blocking (the socket is non-blocking; a write that would block returns). A
// connection whose socket is full, a client that reads slowly or not at all, is handed to
// a goroutine of its own that waits for it with blocking writes until its frames are out,
// so it never holds up the writers and the other subscribers: it holds only its own
// goroutine, until it catches up or the hub drops it (its buffer full: EventsBuffer + 64
// frames, what the r3labs path holds) and the connection is closed, which fails the
// blocked write. That is the bound of the r3labs path too.
//
// Ending: the hub's drop (a subscriber that does not read, or the hub stopping) closes the
// connection at once. Shutdown (the server's base context cancelled, see ConnContext)
// queues the chunked body's last chunk behind the waiting frames and gives them endGrace
// to go out, so a reading client sees its stream end cleanly. A client that goes away is
// seen by the next write that fails, or at the latest at the next keepalive (every
// actors.DefaultKeepAlive, 10 s): after writing one, the writer looks whether the client
// has closed its side (a read that does not block). That is the one thing done later than
// on the net/http path, where a goroutine reads the connection all the time; the hub
// counts the subscriber until then. Every end closes the connection and ends the
// Subscription exactly once (eventConn.finish), and no goroutine is left: the writers
// stop when their list is empty.
//
// The queue of a connection is guarded by a mutex rather than being a channel: a channel
// that can hold EventsBuffer frames is 2 KB per subscriber from the start, and the queue
// is almost always empty. It is transport state, like r3labs' own; the subscriber itself
// (pending or live, its drop) is the hub's.

// eventWriters writes the hijacked /events connections of one Server.
type eventWriters struct {
	hub   EventsHub
	limit int // frames that may wait in one connection before the hub drops it
	max   int // writer goroutines at most

	mu      sync.Mutex
	ready   []*eventConn // connections with frames to write, from head on
	head    int
	running int

	// last is the most recent event encoded: the hub hands the same event to every
	// subscriber in turn, so all but the first find it here.
	last atomic.Pointer[encodedEvent]
	// open counts the connections not yet finished (Server.WaitEvents).
	open sync.WaitGroup
}

type encodedEvent struct {
	ev *sse.Event
	f  *wireFrame
}

// subscriberChannel is what r3labs' subscriber channel holds beyond the stream's buffer; a
// hijacked connection may hold as much, so a slow client is dropped at the same point on
// both paths.
const subscriberChannel = 64

func newEventWriters(hub EventsHub, buffer int) *eventWriters {
	return &eventWriters{hub: hub, limit: buffer + subscriberChannel, max: max(2, runtime.GOMAXPROCS(0))}
}

// wireFrame is one event as it goes on the wire, shared by every connection it is queued
// on (never modified).
type wireFrame struct {
	// chunk is the event as one HTTP/1.1 chunk: size line, event, CRLF; chunk[start:end] is
	// the event itself, for a connection that is not chunked (HTTP/1.0).
	chunk      []byte
	start, end int
	// probe marks a keepalive: after it, the writer looks whether the client went away.
	probe bool
}

func (f *wireFrame) wire(chunked bool) []byte {
	if chunked {
		return f.chunk
	}
	return f.chunk[f.start:f.end]
}

// endFrame is the chunked body's end, queued at shutdown.
var endFrame = &wireFrame{chunk: []byte("0\r\n\r\n")}

// appendChunk appends body as one chunk (or as it is, when not chunked).
func appendChunk(b, body []byte, chunked bool) []byte {
	if !chunked {
		return append(b, body...)
	}
	b = strconv.AppendInt(b, int64(len(body)), 16)
	b = append(b, "\r\n"...)
	b = append(b, body...)
	return append(b, "\r\n"...)
}

// frame returns the encoded frame of ev.
func (w *eventWriters) frame(ev *sse.Event) *wireFrame {
	if e := w.last.Load(); e != nil && e.ev == ev {
		return e.f
	}
	body := appendWireEvent(nil, ev)
	chunk := appendChunk(make([]byte, 0, len(body)+12), body, true)
	start := bytes.IndexByte(chunk, '\n') + 1
	f := &wireFrame{chunk: chunk, start: start, end: start + len(body), probe: len(ev.Data) == 0 && len(ev.Comment) > 0}
	w.last.Store(&encodedEvent{ev: ev, f: f})
	return f
}

// schedule puts c on the ready list (its busy flag is set: it is on the list once) and
// starts a writer if fewer than max run.
func (w *eventWriters) schedule(c *eventConn) {
	w.mu.Lock()
	w.ready = append(w.ready, c)
	spawn := w.running < w.max
	if spawn {
		w.running++
	}
	w.mu.Unlock()
	if spawn {
		go w.work()
	}
}

// work writes ready connections until there are none. It takes them a batch at a time,
// so that the hub, which appends them one by one, seldom waits for the list's lock.
func (w *eventWriters) work() {
	var sio sysIO
	var batch [32]*eventConn
	for {
		w.mu.Lock()
		if w.head == len(w.ready) {
			clear(w.ready)
			w.ready, w.head = w.ready[:0], 0
			w.running--
			w.mu.Unlock()
			return
		}
		n := copy(batch[:], w.ready[w.head:])
		clear(w.ready[w.head : w.head+n])
		w.head += n
		w.mu.Unlock()
		for i, c := range batch[:n] {
			c.write(&sio)
			batch[i] = nil
		}
	}
}

// eventConn is one hijacked /events connection: the hub's EventStreams for that one
// subscriber (the stream id is ignored: the connection is the stream).
type eventConn struct {
	w       *eventWriters
	conn    net.Conn
	raw     syscall.RawConn // nil: the connection cannot be written without blocking
	sub     *actors.Subscription
	chunked bool
	mu      sync.Mutex
	// stopDrop and stopLife unregister the drop and shutdown callbacks (finish); set once
	// both are registered.
	stopDrop, stopLife func() bool
	q                  []*wireFrame // waiting frames; q[0] is being written
	// busy: a goroutine (the handler, a writer, or the connection's own slow writer) owns
	// the writing, and off; or c is on the ready list.
	busy bool
	// closing: the end is queued, nothing more is taken.
	closing bool
	// done: finished, the connection is closed.
	done bool
	off  int // bytes of q[0] written; the busy goroutine's
}

var _ actors.EventStreams = (*eventConn)(nil)

// TryPublish queues ev; false when the connection's buffer is full or it is ending.
func (c *eventConn) TryPublish(_ string, ev *sse.Event) bool {
	f := c.w.frame(ev)
	c.mu.Lock()
	if c.done || c.closing || len(c.q) >= c.w.limit {
		c.mu.Unlock()
		return false
	}
	c.q = append(c.q, f)
	start := !c.busy
	c.busy = true
	c.mu.Unlock()
	if start {
		c.w.schedule(c)
	}
	return true
}

// StreamExists is false once the connection is ending: the hub forgets the subscriber
// without counting a drop.
func (c *eventConn) StreamExists(string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.done && !c.closing
}

// sysIO is one goroutine's state for writes and reads that must not block, kept so that
// the callbacks of syscall.RawConn are made once per goroutine, not per write.
type sysIO struct {
	b        []byte
	n        int
	err      error
	peek     [64]byte
	wfn, rfn func(uintptr) bool
}

func (s *sysIO) doWrite(fd uintptr) bool {
	for {
		s.n, s.err = syscall.Write(int(fd), s.b)
		if s.err != syscall.EINTR {
			return true
		}
	}
}

func (s *sysIO) doRead(fd uintptr) bool {
	for {
		s.n, s.err = syscall.Read(int(fd), s.peek[:])
		if s.err != syscall.EINTR {
			return true
		}
	}
}

// errWouldBlock: the socket is full; the rest goes out from a goroutine that may wait.
var errWouldBlock = errors.New("write would block")

// tryWrite writes what the socket takes now.
func (c *eventConn) tryWrite(sio *sysIO, b []byte) (int, error) {
	if sio.wfn == nil {
		sio.wfn, sio.rfn = sio.doWrite, sio.doRead
	}
	sio.b = b
	err := c.raw.Write(sio.wfn)
	sio.b = nil
	switch {
	case err != nil:
		return 0, err
	case sio.err == syscall.EAGAIN:
		return 0, errWouldBlock
	case sio.err != nil:
		return 0, sio.err
	case sio.n < len(b):
		return sio.n, errWouldBlock
	}
	return sio.n, nil
}

// peerGone reports whether the client has closed its side (or the connection failed),
// without blocking. Bytes a client sends on an event stream mean nothing and are dropped.
func (c *eventConn) peerGone(sio *sysIO) bool {
	if c.raw == nil {
		return false
	}
	if sio.rfn == nil {
		sio.wfn, sio.rfn = sio.doWrite, sio.doRead
	}
	for range 16 {
		if err := c.raw.Read(sio.rfn); err != nil {
			return true
		}
		switch {
		case sio.err == syscall.EAGAIN:
			return false
		case sio.err != nil || sio.n == 0:
			return true // an error, or EOF
		}
	}
	return false // a client that keeps sending: look again at the next keepalive
}

// write writes c's waiting frames, called by whoever owns busy. sio nil means this
// goroutine may block (the handler, or c's slow writer); otherwise it is a shared writer,
// which hands c to a goroutine of its own when the socket is full.
func (c *eventConn) write(sio *sysIO) {
	blocking := sio == nil || c.raw == nil
	if blocking && sio != nil {
		// A connection without a raw descriptor: every burst gets its own goroutine.
		go c.write(nil)
		return
	}
	var own sysIO
	if sio == nil {
		sio = &own
	}
	for {
		c.mu.Lock()
		if c.done || len(c.q) == 0 {
			c.busy = false
			c.mu.Unlock()
			return
		}
		f := c.q[0]
		c.mu.Unlock()
		b := f.wire(c.chunked)[c.off:]
		var n int
		var err error
		if blocking {
			n, err = c.conn.Write(b)
		} else {
			n, err = c.tryWrite(sio, b)
		}
		c.off += n
		if err == errWouldBlock {
			go c.write(nil) // still busy: the slow writer owns it now
			return
		}
		if err != nil {
			c.finish()
			return
		}
		c.off = 0
		c.mu.Lock()
		if c.done { // finished meanwhile (dropped): its queue is gone
			c.busy = false
			c.mu.Unlock()
			return
		}
		n = copy(c.q, c.q[1:])
		c.q[n] = nil
		c.q = c.q[:n]
		c.mu.Unlock()
		if f == endFrame || f.probe && c.peerGone(sio) {
			c.finish()
			return
		}
	}
}

// shutdown ends the stream cleanly: the frames waiting and then the end of the body go
// out within endGrace, after which a write still blocked fails.
func (c *eventConn) shutdown() {
	c.mu.Lock()
	if c.done || c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.q = append(c.q, endFrame)
	start := !c.busy
	c.busy = true
	c.mu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(endGrace))
	if start {
		c.w.schedule(c)
	}
}

// finish closes the connection and ends the subscription, once; a write blocked on it
// fails.
func (c *eventConn) finish() {
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		return
	}
	c.done = true
	c.q = nil
	stopDrop, stopLife := c.stopDrop, c.stopLife
	c.mu.Unlock()
	_ = c.conn.Close()
	if stopDrop != nil {
		// Registered: unregister, so the base context keeps no entry per ended stream.
		// Otherwise serveHijacked does it when it sees done.
		stopDrop()
		stopLife()
	}
	c.sub.End()
	c.w.open.Done()
}

// newConn returns the stream of a new subscriber on r's connection, to subscribe with;
// serve then takes the connection.
func (w *eventWriters) newConn(r *http.Request) *eventConn {
	// busy: the handler writes until the subscriber is live.
	return &eventConn{w: w, chunked: r.ProtoAtLeast(1, 1), busy: true}
}

// serve takes an /events connection off net/http (see the top of this file) and writes its
// status, headers h and replay; it returns once the subscriber is live, or gone. life ends
// at shutdown. false: the connection could not be hijacked, nothing was written.
func (c *eventConn) serve(hj http.Hijacker, h http.Header, sub *actors.Subscription, life context.Context) bool {
	conn, _, err := hj.Hijack()
	if err != nil {
		return false
	}
	// The buffered reader and writer net/http hands over are dropped: nothing is read,
	// and every write is one frame.
	c.conn, c.sub = conn, sub
	w := c.w
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
		}
	}
	w.open.Add(1)
	stopDrop := context.AfterFunc(sub.Dropped(), c.finish)
	stopLife := context.AfterFunc(life, c.shutdown)
	c.mu.Lock()
	if c.done { // dropped already
		stopDrop()
		stopLife()
	} else {
		c.stopDrop, c.stopLife = stopDrop, stopLife
	}
	c.mu.Unlock()

	setEventStreamHeaders(h)
	// The connection is never handed back, so it closes after the body ends.
	h.Set("Connection", "close")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	if c.chunked {
		h.Set("Transfer-Encoding", "chunked")
	}
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	_ = h.Write(&head)
	head.WriteString("\r\n")
	buf := head.Bytes()
	var ev []byte
	for _, m := range sub.Missed() {
		ev = appendWireEvent(ev[:0], m)
		buf = appendChunk(buf, ev, c.chunked)
		if len(buf) >= 32<<10 {
			if !c.put(buf) {
				return true
			}
			buf = buf[:0]
		}
	}
	if !c.put(buf) {
		return true
	}
	c.mu.Lock()
	live := !c.done && !c.closing
	c.mu.Unlock()
	c.write(nil) // what shutdown queued meanwhile, if anything; then busy is off
	if live {
		w.hub.SubscriberReady(sub.ID())
	}
	return true
}

// put writes b, blocking (the handler's writes: the status, headers and replay).
func (c *eventConn) put(b []byte) bool {
	if _, err := c.conn.Write(b); err != nil {
		c.finish()
		return false
	}
	return true
}

// WaitEvents waits, bounded by ctx, until every /events connection taken off net/http
// has ended: after the base context was cancelled, within endGrace (the daemon calls it
// at shutdown, after that).
func (s *Server) WaitEvents(ctx context.Context) {
	if s.writers == nil {
		return
	}
	done := make(chan struct{})
	go func() { s.writers.open.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// baseCtxKey holds the context a connection is served under (ConnContext): it ends only
// when the server's base context does, which a hijacked stream needs since its request's
// context ends when the handler returns.
type baseCtxKey struct{}

// streamLife is the context that ends a hijacked stream at shutdown: the base context
// ConnContext kept, else none (the stream then ends with its client, its drop or the hub).
func streamLife(r *http.Request) context.Context {
	if ctx, ok := r.Context().Value(baseCtxKey{}).(context.Context); ok {
		return ctx
	}
	return context.Background()
}
