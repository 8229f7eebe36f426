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
// Both limiters (like lineLimiter on a stdio child's stdout) read a message whole before
// handing any of it on. mcp-go's readers buffer
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
		resp.Body = newEventLimiter(resp.Body, t.max, t.over)
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

// framer hands a stream on one whole message at a time and fails it, handing on nothing
// of that message, once one grows past max bytes. split says where messages end: it
// advances its own state over b and returns the offset just past the last message that
// ends in b (0 if none does), and whether the current message grew past max. Holding a
// message until its end delays nothing: mcp-go's readers act on a message only once it is
// whole. When the stream ends, what is held is handed on before the error, as mcp-go
// handles a last unterminated message itself.
type framer struct {
	max   int
	over  func(error)
	split func(b []byte) (end int, over bool)

	buf   held // read but not handed on: whole messages first, then the current one
	ready int  // how many bytes of buf are whole messages
	err   error
}

func (f *framer) read(r io.Reader, p []byte) (int, error) {
	for f.ready == 0 {
		if f.err != nil {
			if f.buf.n == 0 || errors.Is(f.err, ErrMessageTooLarge) {
				return 0, f.err
			}
			f.ready = f.buf.n
			break
		}
		// Read straight into p: when nothing is held and p ends with whole messages, they
		// are handed on without a copy.
		n, err := r.Read(p)
		end, over := f.split(p[:n])
		if over {
			f.buf.reset()
			f.ready = 0
			f.err = tooLarge(f.max)
			if f.over != nil {
				f.over(f.err)
			}
			return 0, f.err
		}
		f.err = err
		if f.buf.n == 0 && end > 0 {
			f.buf.add(p[end:n])
			return end, nil
		}
		f.buf.add(p[:n])
		if end > 0 {
			f.ready = f.buf.n - (n - end)
		}
	}
	k := f.buf.take(p[:min(len(p), f.ready)])
	f.ready -= k
	return k, nil
}

// eventLimiter bounds an SSE stream per event (see framer). It follows mcp-go's reader: a
// line ends only at '\n', and a line holding nothing but '\r' (blank once its line ending
// is trimmed) ends the event. Every byte of the event counts, line endings and fields
// mcp-go ignores included, because its reader buffers each line whole and joins an event's
// data lines: so neither one endless line nor an endless run of short lines in one event
// can grow past the limit.
type eventLimiter struct {
	rc      io.ReadCloser
	f       framer
	n       int  // bytes of the current event so far
	content bool // the current line has a byte other than '\r'
}

func newEventLimiter(rc io.ReadCloser, max int, over func(error)) *eventLimiter {
	e := &eventLimiter{rc: rc}
	e.f = framer{max: max, over: over, split: e.scan}
	return e
}

func (e *eventLimiter) Read(p []byte) (int, error) { return e.f.read(e.rc, p) }

func (e *eventLimiter) Close() error { return e.rc.Close() }

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
		if e.n > e.f.max {
			return end, true
		}
	}
	return end, false
}

// lineLimiter bounds a stdio child's stdout per line (see framer), because mcp-go's
// reader buffers whole lines without bound. onErr is told why the stream failed: the
// limit (ErrMessageTooLarge), or "stdout closed" with the read error.
type lineLimiter struct {
	r       io.Reader
	f       framer
	current int // bytes of the current line, its '\n' not counted
	onErr   func(error)
}

func newLineLimiter(r io.Reader, max int, onErr func(error)) *lineLimiter {
	l := &lineLimiter{r: r, onErr: onErr}
	l.f = framer{max: max, over: onErr, split: l.scan}
	return l
}

func (l *lineLimiter) Read(p []byte) (int, error) {
	n, err := l.f.read(l.r, p)
	if err != nil && !errors.Is(err, ErrMessageTooLarge) {
		l.onErr(fmt.Errorf("stdout closed: %w", err))
	}
	return n, err
}

func (l *lineLimiter) scan(b []byte) (end int, over bool) {
	for i, c := range b {
		if c == '\n' {
			l.current = 0
			end = i + 1
			continue
		}
		if l.current++; l.current > l.f.max {
			return end, true
		}
	}
	return end, false
}
