package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
)

// ErrMessageTooLarge is why a connection is dropped when one message from the upstream
// exceeds Options.MaxMessageBytes: a stdio line, an HTTP response body (answers and error
// bodies alike), or one event of an SSE stream. errors.Is matches it; the message names
// the limit, e.g. "answer exceeded max_message_bytes (16777216)".
var ErrMessageTooLarge = errors.New("answer exceeded max_message_bytes")

// tooLarge is ErrMessageTooLarge with the limit in force.
func tooLarge(limit int) error { return fmt.Errorf("%w (%d)", ErrMessageTooLarge, limit) }

// limitTransport bounds every response body of a remote upstream's http.Client, because
// mcp-go reads them without a limit (io.ReadAll, json.Decoder, bufio line reads): a server
// that answers with an endless body would otherwise grow our memory until the kernel kills
// the daemon. A plain body is capped as a whole (it carries one JSON-RPC message or an
// error page); an event stream, endless by nature, is capped per event. over is called
// once per body that crosses the limit, before its Read fails, so the connection can be
// marked lost with ErrMessageTooLarge before mcp-go reports its own, vaguer, error.
//
// Both limiters read a message whole before handing any of it on. mcp-go's readers buffer
// a message by doubling (json.Decoder, bufio.Reader.ReadString), so one that reached the
// limit there would cost three to four times the limit and, with the collector's headroom,
// twice that again; held here in the chunks it arrived in, an oversized message costs the
// limit once and is dropped without mcp-go ever seeing it.
type limitTransport struct {
	base http.RoundTripper
	max  int
	over func(error)
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.Body == nil || resp.Body == http.NoBody {
		return resp, err
	}
	// The same parse mcp-go uses to pick its reader, so that a stream it reads line by line
	// is always the one capped per event.
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mediaType == "text/event-stream" {
		resp.Body = &eventLimiter{rc: resp.Body, max: t.max, over: t.over}
	} else {
		resp.Body = &bodyLimiter{rc: resp.Body, max: t.max, over: t.over, length: resp.ContentLength}
	}
	return resp, nil
}

// held is a queue of bytes read ahead and not yet handed on, kept in the chunks they were
// read in, so that holding more never copies what is already held.
type held struct {
	chunks [][]byte
	n      int
}

func (h *held) add(b []byte) {
	if len(b) > 0 {
		h.chunks = append(h.chunks, bytes.Clone(b))
		h.n += len(b)
	}
}

// take moves up to len(p) of the oldest bytes into p.
func (h *held) take(p []byte) int {
	k := 0
	for k < len(p) && len(h.chunks) > 0 {
		c := copy(p[k:], h.chunks[0])
		k += c
		if h.chunks[0] = h.chunks[0][c:]; len(h.chunks[0]) == 0 {
			h.chunks[0] = nil
			h.chunks = h.chunks[1:]
		}
	}
	h.n -= k
	return k
}

func (h *held) reset() { h.chunks, h.n = nil, 0 }

// scratchPool holds the read buffers of bodyLimiter.fill: one per body being read, back
// in the pool as soon as the body is.
var scratchPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// bodyLimiter reads a whole body (at most max bytes) on its first Read, then hands it on;
// a longer body fails without any of it handed on.
type bodyLimiter struct {
	rc     io.ReadCloser
	max    int
	over   func(error)
	length int64 // Content-Length, -1 when unknown

	filled bool
	buf    held
	err    error // what ends the body once buf is drained: io.EOF, a read error, the limit
}

func (b *bodyLimiter) Read(p []byte) (int, error) {
	if !b.filled {
		b.filled = true
		b.fill()
	}
	if b.buf.n > 0 {
		return b.buf.take(p), nil
	}
	return 0, b.err
}

func (b *bodyLimiter) fill() {
	if b.length > int64(b.max) {
		b.fail()
		return
	}
	sp := scratchPool.Get().(*[]byte)
	defer scratchPool.Put(sp)
	scratch := *sp
	for {
		// At most one byte past the limit: enough to tell, no more.
		n, err := b.rc.Read(scratch[:min(len(scratch), b.max-b.buf.n+1)])
		b.buf.add(scratch[:n])
		if b.buf.n > b.max {
			b.fail()
			return
		}
		if err != nil {
			b.err = err
			return
		}
	}
}

func (b *bodyLimiter) fail() {
	b.buf.reset()
	b.err = tooLarge(b.max)
	if b.over != nil {
		b.over(b.err)
	}
}

func (b *bodyLimiter) Close() error { return b.rc.Close() }

// eventLimiter hands an SSE stream on one whole event at a time and fails it once one
// event grows past max bytes. It follows mcp-go's reader: a line ends only at '\n', and a
// line holding nothing but '\r' (blank once its line ending is trimmed) ends the event.
// Every byte of the event counts, line endings and fields mcp-go ignores included, because
// its reader buffers each line whole and joins an event's data lines: so neither one
// endless line nor an endless run of short lines in one event can grow past the limit.
// mcp-go dispatches an event only at its end, so holding it until then delays nothing;
// when the stream ends, what is held is handed on, as mcp-go handles a last unterminated
// event.
type eventLimiter struct {
	rc   io.ReadCloser
	max  int
	over func(error)

	n       int  // bytes of the current event so far
	content bool // the current line has a byte other than '\r'
	buf     held // read but not handed on: complete events first, then the current one
	ready   int  // how many bytes of buf are complete events
	err     error
}

func (e *eventLimiter) Read(p []byte) (int, error) {
	for e.ready == 0 {
		if e.err != nil {
			if e.buf.n == 0 || errors.Is(e.err, ErrMessageTooLarge) {
				return 0, e.err
			}
			e.ready = e.buf.n
			break
		}
		// Read straight into p: when nothing is held and p ends with whole events, they
		// are handed on without a copy.
		n, err := e.rc.Read(p)
		end, over := e.scan(p[:n])
		if over {
			e.buf.reset()
			e.err = tooLarge(e.max)
			if e.over != nil {
				e.over(e.err)
			}
			return 0, e.err
		}
		e.err = err
		if e.buf.n == 0 && end > 0 {
			e.buf.add(p[end:n])
			return end, nil
		}
		e.buf.add(p[:n])
		if end > 0 {
			e.ready = e.buf.n - (n - end)
		}
	}
	k := e.buf.take(p[:min(len(p), e.ready)])
	e.ready -= k
	return k, nil
}

// scan advances the event state over b and returns the offset just past the last event
// that ends in b (0 if none does), and whether the current event grew past the limit.
func (e *eventLimiter) scan(b []byte) (end int, over bool) {
	for i, c := range b {
		e.n++
		switch c {
		case '\n':
			if !e.content {
				e.n = 0 // a blank line: the event is over
				end = i + 1
			}
			e.content = false
		case '\r':
		default:
			e.content = true
		}
		if e.n > e.max {
			return end, true
		}
	}
	return end, false
}

func (e *eventLimiter) Close() error { return e.rc.Close() }
