package http

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

// Defaults of the read bounds (Options.HeaderTimeout, Options.ReadTimeout).
const (
	// DefaultHeaderTimeout bounds reading a request's line and headers.
	DefaultHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout bounds reading a whole request, headers and body. The largest
	// body the API takes (8 MiB, a config apply) arrives from a local client in well under
	// a second; 30 s leaves room for a slow link and still frees the connection of a client
	// that stalls.
	DefaultReadTimeout = 30 * time.Second
)

// How the read bounds work, and why they do not cut streams.
//
// The bounds are http.Server's ReadHeaderTimeout and ReadTimeout (see Server.Bounds). A
// read deadline would cut a long-lived response if net/http kept it while the handler runs:
// it watches every connection for the client going away with a background read, and a
// deadline firing there cancels the request. It does not keep it: net/http clears the read
// deadline when it starts that background read, which is when the request body has been
// read to its end, or at once for a request without one (Go 1.26 net/http,
// connReader.startBackgroundRead). So ReadTimeout bounds the request, not the response:
// GET /events, an MCP GET stream and a POST whose answer takes minutes stay open
// (TestStreamsOutliveReadBound checks it with a 300 ms bound).

// watchBody is the first middleware: it lets writeError tell whether the handler has read
// the request body to its end (see refuseUnread).
func (s *Server) watchBody(c *gin.Context) {
	r := c.Request
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		c.Next()
		return
	}
	orig := r.Body
	r.Body = &eofBody{ReadCloser: orig}
	c.Next()
	// net/http decides what to do with the rest of the body by the body's own type.
	r.Body = orig
}

// refuseUnread makes the connection of a request answered with an error before its body
// was read close at once instead of waiting for the body.
//
// Every refusal (401, 403, 404, 405, 413) returns without reading the body. net/http then
// reads and discards up to 256 KB of what is left, to keep the connection, before it
// writes the answer: a client without the key that announced Content-Length: 200000 and
// sent nothing held its connection (for ever, before there was a read bound) and got no
// answer meanwhile. Moving the read deadline to now makes that discard fail at once; then
// net/http answers with Connection: close and closes the connection.
//
// It must happen before the answer is written, and only while the body is unread: once
// net/http has read a body to its end (the handler did, or net/http's own discard when a
// streaming answer is flushed) it watches the connection with a background read, and a
// deadline in the past fails that read and cancels the connection's context, which every
// later request on a kept-alive connection would then start with. An answer that is not
// an error (a route that ignores a body) leaves net/http to discard the body, within the
// read bound.
func refuseUnread(c *gin.Context) {
	if b, ok := c.Request.Body.(*eofBody); ok && !b.eof.Load() {
		_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Now())
	}
}

// eofBody records whether the body has been read to its end.
type eofBody struct {
	io.ReadCloser
	eof atomic.Bool
}

func (b *eofBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

// bodyTimedOut reports whether a body read failed because the read bound passed.
func bodyTimedOut(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
