package upstream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/config"
)

// RPCError is a JSON-RPC error object as it travels: Data is kept verbatim.
type RPCError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *RPCError) Error() string { return fmt.Sprintf("JSON-RPC error %d: %s", e.Code, e.Message) }

// RawHandlers receive what an upstream sends on its own initiative over a RawConn.
type RawHandlers struct {
	// Notification is called on the connection's read loop for each notification, in the
	// order the upstream sent them and before any response that followed it is handed to
	// its caller. It must not block.
	Notification func(method string, params json.RawMessage)
	// Request answers a server-to-client request (sampling, elicitation, roots, ping). It
	// runs in its own goroutine; ctx ends when the connection closes. It returns the result,
	// or the error to answer with. Nil answers every request with "method not found".
	Request func(ctx context.Context, id json.RawMessage, method string, params json.RawMessage) (json.RawMessage, *RPCError)
}

// RawConn is a connection to an upstream that carries JSON-RPC messages without re-typing
// them: requests go out with the caller's params byte for byte, results and errors come
// back verbatim, so fields no library knows of survive. It performs no handshake: the
// caller sends initialize (the agent's own, for the passthrough endpoint).
//
// A stdio upstream is read and written here directly, one JSON message per line. Remote
// upstreams use mcp-go's transports, which decode notifications and server requests into
// maps (key order and number formatting may change, nothing else); the streamable HTTP
// transport keeps a GET stream open for messages the server sends on its own. mcp-go's
// legacy SSE transport cannot receive server-to-client requests: they go unanswered.
//
// # Concurrency
//
// All methods may be called from many goroutines.
type RawConn struct {
	conn *Conn // process group, lifetime and stderr; conn.Client is nil
	t    rawTransport
	ids  atomic.Int64
}

// rawTransport is the wire of a RawConn.
type rawTransport interface {
	call(ctx context.Context, id int64, method string, params json.RawMessage) (json.RawMessage, *RPCError, error)
	notify(ctx context.Context, method string, params json.RawMessage) error
	setProtocolVersion(v string)
	close()
}

// ErrConnLost is returned by Call and Notify once the connection is gone; errors.Is matches
// it and the message says why.
var ErrConnLost = errors.New("upstream connection lost")

// DialRaw starts the upstream described by cfg (normalised, references expanded) for raw
// JSON-RPC: a stdio child as Dial starts it (own process group, minimal environment, the
// command wrapper), or a remote transport. ctx bounds only the dial (the SSE endpoint wait);
// the connection lives until Close. opts.OnNotification, Capabilities and ClientOptions do
// not apply: h receives what the upstream sends. Its errors, and those of Call and Notify,
// are scrubbed with opts.Scrub (JSON-RPC errors the upstream answers are passed verbatim).
func DialRaw(ctx context.Context, cfg config.ServerConfig, opts Options, h RawHandlers) (*RawConn, error) {
	scrub := opts.prepare(cfg)
	rc, err := dialRaw(ctx, cfg, opts, h)
	return rc, scrub.Err(err)
}

func dialRaw(ctx context.Context, cfg config.ServerConfig, opts Options, h RawHandlers) (*RawConn, error) {
	life, cancel := context.WithCancel(context.Background())
	conn := &Conn{cancel: cancel, done: make(chan struct{}), scrub: opts.Scrub}
	rc := &RawConn{conn: conn}
	var err error
	switch cfg.Protocol {
	case "stdio", "":
		var out io.Reader
		var in io.WriteCloser
		if out, in, err = conn.spawn(cfg, opts); err == nil {
			s := &rawStdio{w: in, h: h, life: life, conn: conn, pending: map[int64]chan rawResult{}}
			rc.t = s
			go s.readLoop(out)
		}
	case "http":
		conn.http = newHTTPClient(opts.MaxMessageBytes, conn.lost)
		conn.authorize(cfg, opts)
		var tr *transport.StreamableHTTP
		tr, err = transport.NewStreamableHTTP(cfg.URL, transport.WithHTTPBasicClient(conn.http),
			transport.WithHTTPHeaders(cfg.Headers), transport.WithHTTPLogger(opts.Logger),
			// Messages the server sends outside a request arrive on the GET stream.
			transport.WithContinuousListening())
		if err == nil {
			rc.t = newRawAdapter(tr, h, conn)
			err = tr.Start(life)
		}
	case "sse":
		conn.http = newHTTPClient(opts.MaxMessageBytes, conn.lost)
		conn.authorize(cfg, opts)
		var tr *transport.SSE
		tr, err = transport.NewSSE(cfg.URL, transport.WithHTTPClient(conn.http),
			transport.WithHeaders(cfg.Headers), transport.WithSSELogger(opts.Logger))
		if err == nil {
			tr.SetConnectionLostHandler(func(err error) { conn.lost(fmt.Errorf("event stream lost: %w", err)) })
			rc.t = newRawAdapter(tr, h, conn)
			err = startBounded(ctx, conn, func() error { return tr.Start(life) })
		}
	default:
		err = fmt.Errorf("unknown protocol %q", cfg.Protocol)
	}
	if err != nil {
		rc.Close()
		if tail := conn.Stderr(); tail != "" {
			err = fmt.Errorf("%w (stderr: %s)", err, tail)
		}
		return nil, err
	}
	return rc, nil
}

// startBounded runs start (which may wait for the server) until it returns, ctx ends or the
// connection is lost.
func startBounded(ctx context.Context, conn *Conn, start func() error) error {
	ch := make(chan error, 1)
	go func() { ch <- start() }()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-conn.done:
		return conn.err
	}
}

// NewID returns a request id unused on this connection.
func (c *RawConn) NewID() int64 { return c.ids.Add(1) }

// Call sends a request with id (from NewID) and params verbatim, and waits for the answer:
// the result, or the upstream's JSON-RPC error. err is set when no answer came: ctx ended
// (context.Canceled or DeadlineExceeded; the caller may tell the upstream with
// notifications/cancelled) or the connection broke (ErrConnLost).
func (c *RawConn) Call(ctx context.Context, id int64, method string, params json.RawMessage) (json.RawMessage, *RPCError, error) {
	res, rpcErr, err := c.call(ctx, id, method, params)
	return res, rpcErr, c.conn.scrub.Err(err)
}

func (c *RawConn) call(ctx context.Context, id int64, method string, params json.RawMessage) (json.RawMessage, *RPCError, error) {
	select {
	case <-c.conn.done:
		return nil, nil, c.lostErr()
	default:
	}
	res, rpcErr, err := c.t.call(ctx, id, method, params)
	if err != nil && ctx.Err() == nil {
		select {
		case <-c.conn.done:
			return nil, nil, c.lostErr()
		default:
		}
	}
	return res, rpcErr, err
}

// Notify sends a notification with params verbatim (stdio) or re-encoded (remote).
func (c *RawConn) Notify(ctx context.Context, method string, params json.RawMessage) error {
	select {
	case <-c.conn.done:
		return c.lostErr()
	default:
	}
	return c.conn.scrub.Err(c.t.notify(ctx, method, params))
}

// SetProtocolVersion records the version initialize negotiated; remote transports send it
// in the MCP-Protocol-Version header of every later request.
func (c *RawConn) SetProtocolVersion(v string) { c.t.setProtocolVersion(v) }

// Done is closed when the connection is lost or closed.
func (c *RawConn) Done() <-chan struct{} { return c.conn.done }

// Err says why Done was closed.
func (c *RawConn) Err() error { return c.conn.Err() }

// PID is the stdio child's process id (and process group); 0 for remotes.
func (c *RawConn) PID() int { return c.conn.PID }

// Stderr returns the last lines a stdio child wrote to stderr.
func (c *RawConn) Stderr() string { return c.conn.Stderr() }

// Close ends the connection: stdin is closed first so a well-behaved server exits at once,
// then the process group is stopped as Conn.Close does. It may be called more than once.
func (c *RawConn) Close() error {
	if c.t != nil {
		c.t.close()
	}
	return c.conn.Close()
}

func (c *RawConn) lostErr() error {
	if err := c.conn.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrConnLost, err)
	}
	return ErrConnLost
}

// rawResult is the answer to one request.
type rawResult struct {
	result json.RawMessage
	err    *RPCError
}

// rawStdio speaks newline-delimited JSON-RPC with a child process.
type rawStdio struct {
	w    io.WriteCloser
	wmu  sync.Mutex // one message per write, whole
	h    RawHandlers
	life context.Context
	conn *Conn

	mu      sync.Mutex
	pending map[int64]chan rawResult
}

// WireMessage is any JSON-RPC message, its fields kept raw so that schemas and unknown
// fields pass untouched: the one wire type of the raw connection and of the passthrough
// sessions (actors/passthrough).
type WireMessage struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *RPCError       `json:"error,omitempty"`
}

// HasID reports whether a decoded JSON-RPC id is present and not null.
func HasID(id json.RawMessage) bool {
	return len(id) > 0 && string(id) != "null"
}

// encodeLine marshals v as one line, without escaping <, > and & (the bytes of strings
// are passed on as they came).
func encodeLine(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (s *rawStdio) write(m WireMessage) error {
	m.JSONRPC = "2.0"
	line, err := encodeLine(m)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", m.Method, err)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, err := s.w.Write(line); err != nil {
		return fmt.Errorf("%w: writing to the server: %v", ErrConnLost, err)
	}
	return nil
}

func (s *rawStdio) readLoop(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			s.dispatch(line)
		}
		if err != nil {
			s.conn.lost(fmt.Errorf("stdout closed: %w", err))
			return
		}
	}
}

// dispatch handles one line: notifications synchronously (their order matters), requests
// in goroutines, responses to their waiting caller. Lines that are not JSON-RPC are
// skipped, as servers that log to stdout are common.
func (s *rawStdio) dispatch(line []byte) {
	var m WireMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return
	}
	switch {
	case m.Method != "" && !HasID(m.ID):
		if s.h.Notification != nil {
			s.h.Notification(m.Method, m.Params)
		}
	case m.Method != "":
		go s.answer(m)
	default:
		var id int64
		if err := json.Unmarshal(m.ID, &id); err != nil {
			return
		}
		s.mu.Lock()
		ch := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if ch != nil {
			ch <- rawResult{result: m.Result, err: m.Error}
		}
	}
}

// answer runs the request handler for a server-to-client request and writes its answer.
func (s *rawStdio) answer(m WireMessage) {
	out := WireMessage{ID: m.ID}
	if s.h.Request == nil {
		out.Error = &RPCError{Code: mcp.METHOD_NOT_FOUND, Message: "method not found: " + m.Method}
	} else {
		out.Result, out.Error = s.h.Request(s.life, m.ID, m.Method, m.Params)
		if out.Error == nil && len(out.Result) == 0 {
			out.Result = json.RawMessage("{}")
		}
	}
	if out.Error != nil {
		out.Result = nil
	}
	_ = s.write(out) // a broken pipe also ends the read loop, which reports it
}

func (s *rawStdio) call(ctx context.Context, id int64, method string, params json.RawMessage) (json.RawMessage, *RPCError, error) {
	ch := make(chan rawResult, 1)
	s.mu.Lock()
	s.pending[id] = ch
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
	}
	raw, _ := json.Marshal(id)
	if err := s.write(WireMessage{ID: raw, Method: method, Params: params}); err != nil {
		forget()
		return nil, nil, err
	}
	select {
	case r := <-ch:
		return r.result, r.err, nil
	case <-ctx.Done():
		forget()
		return nil, nil, ctx.Err()
	case <-s.conn.done:
		// A response read just before the loop ended still counts.
		select {
		case r := <-ch:
			return r.result, r.err, nil
		default:
		}
		forget()
		return nil, nil, ErrConnLost
	}
}

func (s *rawStdio) notify(_ context.Context, method string, params json.RawMessage) error {
	return s.write(WireMessage{Method: method, Params: params})
}

func (s *rawStdio) setProtocolVersion(string) {}

// close closes the child's stdin, which tells a well-behaved server to exit. It does not take
// the write lock: a write blocked on a child that stopped reading holds it, and closing the
// pipe is what unblocks that write (the pipe is poller-backed, so this is safe).
func (s *rawStdio) close() {
	_ = s.w.Close()
}

// rawAdapter carries raw messages over one of mcp-go's client transports.
type rawAdapter struct {
	tr   transport.Interface
	conn *Conn
}

func newRawAdapter(tr transport.Interface, h RawHandlers, conn *Conn) *rawAdapter {
	if h.Notification != nil {
		tr.SetNotificationHandler(func(n mcp.JSONRPCNotification) {
			h.Notification(n.Method, notificationParams(n.Params))
		})
	}
	if bt, ok := tr.(transport.BidirectionalInterface); ok {
		bt.SetRequestHandler(func(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
			id, err := json.Marshal(req.ID)
			if err != nil {
				return nil, err
			}
			var params json.RawMessage
			if req.Params != nil {
				if params, err = json.Marshal(req.Params); err != nil {
					return nil, err
				}
			}
			out := &transport.JSONRPCResponse{JSONRPC: "2.0", ID: req.ID}
			if h.Request == nil {
				out.Error = &mcp.JSONRPCErrorDetails{Code: mcp.METHOD_NOT_FOUND, Message: "method not found: " + req.Method}
				return out, nil
			}
			res, rpcErr := h.Request(ctx, id, req.Method, params)
			if rpcErr != nil {
				out.Error = &mcp.JSONRPCErrorDetails{Code: rpcErr.Code, Message: rpcErr.Message}
				if len(rpcErr.Data) > 0 {
					out.Error.Data = rpcErr.Data
				}
				return out, nil
			}
			if len(res) == 0 {
				res = json.RawMessage("{}")
			}
			out.Result = res
			return out, nil
		})
	}
	return &rawAdapter{tr: tr, conn: conn}
}

// notificationParams re-encodes what mcp-go decoded; an empty _meta it added is left out.
func notificationParams(p mcp.NotificationParams) json.RawMessage {
	if len(p.Meta) == 0 && len(p.AdditionalFields) == 0 {
		return nil
	}
	m := make(map[string]any, len(p.AdditionalFields)+1)
	for k, v := range p.AdditionalFields {
		m[k] = v
	}
	if len(p.Meta) > 0 {
		m["_meta"] = p.Meta
	}
	data, err := encodeLine(m)
	if err != nil {
		return nil
	}
	return bytes.TrimRight(data, "\n")
}

func (a *rawAdapter) call(ctx context.Context, id int64, method string, params json.RawMessage) (json.RawMessage, *RPCError, error) {
	req := transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcp.NewRequestId(id), Method: method}
	if len(params) > 0 {
		req.Params = params
	}
	resp, err := a.tr.SendRequest(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if errors.Is(err, transport.ErrTransportClosed) {
			return nil, nil, ErrConnLost
		}
		return nil, nil, err
	}
	if resp.Error != nil {
		e := &RPCError{Code: resp.Error.Code, Message: resp.Error.Message}
		if resp.Error.Data != nil {
			e.Data, _ = json.Marshal(resp.Error.Data)
		}
		return nil, e, nil
	}
	return resp.Result, nil, nil
}

func (a *rawAdapter) notify(ctx context.Context, method string, params json.RawMessage) error {
	n := mcp.JSONRPCNotification{JSONRPC: "2.0", Notification: mcp.Notification{Method: method}}
	if len(params) > 0 {
		if err := json.Unmarshal(params, &n.Params); err != nil {
			return fmt.Errorf("notification params: %w", err)
		}
	}
	return a.tr.SendNotification(ctx, n)
}

func (a *rawAdapter) setProtocolVersion(v string) {
	if hc, ok := a.tr.(interface{ SetProtocolVersion(string) }); ok {
		hc.SetProtocolVersion(v)
	}
}

func (a *rawAdapter) close() { _ = a.tr.Close() }
