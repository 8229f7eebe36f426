package upstream

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
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
		resp.Body = &bodyLimiter{rc: resp.Body, max: t.max, over: t.over}
	}
	return resp, nil
}

// bodyLimiter fails a body once more than max bytes were read from it.
type bodyLimiter struct {
	rc   io.ReadCloser
	max  int
	over func(error)
	n    int
	err  error // set once the limit is crossed; every later Read returns it
}

func (b *bodyLimiter) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	// Read at most one byte past the limit: enough to tell, no more.
	if room := b.max - b.n + 1; len(p) > room {
		p = p[:room]
	}
	n, err := b.rc.Read(p)
	b.n += n
	if b.n > b.max {
		b.err = tooLarge(b.max)
		if b.over != nil {
			b.over(b.err)
		}
		return 0, b.err
	}
	return n, err
}

func (b *bodyLimiter) Close() error { return b.rc.Close() }

// eventLimiter fails an SSE stream once one event grows past max bytes. It follows mcp-go's
// reader: a line ends only at '\n', and a line holding nothing but '\r' (blank once its line
// ending is trimmed) ends the event. Every byte of the event counts, line endings and
// fields mcp-go ignores included, because its reader buffers each line whole and joins an
// event's data lines: so neither one endless line nor an endless run of short lines in one
// event can grow past the limit. A byte-wise scan is cheap next to the JSON decoding that
// follows it.
type eventLimiter struct {
	rc   io.ReadCloser
	max  int
	over func(error)

	n       int  // bytes of the current event so far
	content bool // the current line has a byte other than '\r'
	err     error
}

func (e *eventLimiter) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.rc.Read(p)
	for _, c := range p[:n] {
		e.n++
		switch c {
		case '\n':
			if !e.content {
				e.n = 0 // a blank line: the event is over
			}
			e.content = false
		case '\r':
		default:
			e.content = true
		}
		if e.n > e.max {
			e.err = tooLarge(e.max)
			if e.over != nil {
				e.over(e.err)
			}
			return 0, e.err
		}
	}
	return n, err
}

func (e *eventLimiter) Close() error { return e.rc.Close() }
