package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
	"github.com/mcpproxy/mcpproxy/config"
)

// ptSession is one agent session on /mcp/server/{name} and its own upstream connection.
// Agent requests go upstream with ids of the connection's own (so the agent's ids never
// meet the proxy's), their answers come back under the agent's id; everything else passes
// as it is. What the upstream sends on its own is routed to one of the session's streams
// (see routeLocked).
type ptSession struct {
	e       *Endpoint
	id      string
	server  string
	gen     int
	timeout time.Duration
	up      Upstream
	done    chan struct{} // closed by close
	once    sync.Once

	mu      sync.Mutex
	closed  bool
	calls   []*ptCall // agent requests in flight, oldest first
	get     *outbox   // the GET stream, nil when none is open
	backlog [][]byte  // for the next GET stream
	dropped int
	asks    map[string]chan agentAnswer // server-to-client requests awaiting the agent, by id
}

// ptCall is one agent request in flight.
type ptCall struct {
	agentID   json.RawMessage
	key       string // canonical agent id
	upID      int64
	method    string
	token     string  // canonical progress token, "" if none
	out       *outbox // the stream of the POST that carried it
	cancel    context.CancelFunc
	cancelled atomic.Bool // the agent sent notifications/cancelled for it
}

// outbox is a stream's queue of encoded messages, guarded by the session's mu.
type outbox struct {
	queue [][]byte
	wake  chan struct{}
	gone  bool // nobody reads it any more
}

func newOutbox() *outbox { return &outbox{wake: make(chan struct{}, 1)} }

func (o *outbox) push(msg []byte) {
	o.queue = append(o.queue, msg)
	o.signal()
}

// signal wakes the stream's writer without blocking.
func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// agentAnswer is the agent's answer to a server-to-client request.
type agentAnswer struct {
	result json.RawMessage
	err    *upstream.RPCError
}

func newPTSession(e *Endpoint, name string, t actors.PassthroughTarget) *ptSession {
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = config.DefaultCallToolTimeout
	}
	return &ptSession{e: e, server: name, gen: t.Gen, timeout: timeout, done: make(chan struct{}),
		asks: map[string]chan agentAnswer{}}
}

// watch closes the session when its upstream connection is lost. It holds the session's
// count in the endpoint's WaitGroup until the upstream is closed.
func (s *ptSession) watch() {
	defer s.e.ptWG.Done()
	select {
	case <-s.up.Done():
		s.close("the server's connection was lost")
	case <-s.done:
	}
	_ = s.up.Close()
}

// close ends the session: its streams and waiting requests end, its upstream connection is
// closed, and its record is marked closed.
func (s *ptSession) close(reason string) {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.asks = nil
		s.backlog = nil
		s.mu.Unlock()
		close(s.done)
		s.e.log.Debug("passthrough session closed", "server", s.server, "session", s.id, "reason", reason)
		if s.up != nil {
			_ = s.up.Close()
		}
		s.e.ptRemove(s)
		if ls := s.e.sessions.lookup(s.id); ls != nil {
			s.e.sessions.closeSession(ls, false)
		}
	})
}

// check asks the registry whether the session may still use its server; if not, the
// session is closed and the error says why.
func (s *ptSession) check(ctx context.Context) error {
	gen, err := s.e.opts.Backend.PassthroughGen(ctx, s.server)
	switch {
	case err != nil && (actors.ErrorCode(err) == actors.CodeNotFound || actors.ErrorCode(err) == actors.CodeConflict):
		s.close(err.Error())
		return err
	case err != nil:
		return err
	case gen != s.gen:
		err := actors.Errorf(actors.CodeNotFound, "server %q was reconfigured; initialize a new session", s.server)
		s.close(err.Error())
		return err
	}
	select {
	case <-s.done:
		return actors.Errorf(actors.CodeNotFound, "MCP session %q is closed; initialize a new one", s.id)
	default:
		return nil
	}
}

// post handles a POST of a live session: notifications and the agent's answers go
// upstream at once (202), requests are relayed and answered by relay.
func (s *ptSession) post(h ptHandler, w http.ResponseWriter, r *http.Request, msgs []rpcMessage, batch bool) {
	var reqs []rpcMessage
	for _, m := range msgs {
		if m.isRequest() {
			reqs = append(reqs, m)
		}
	}
	if err := s.check(r.Context()); err != nil {
		if len(reqs) == 0 {
			h.fail(w, err)
			return
		}
		out := make([]wireMsg, len(reqs))
		for i, m := range reqs {
			out[i] = failure(m, codeRefused, err.Error())
		}
		if batch {
			writeJSON(w, http.StatusOK, out)
		} else {
			writeJSON(w, http.StatusOK, out[0])
		}
		return
	}
	for _, m := range msgs {
		switch {
		case m.isRequest():
		case m.Method != "":
			s.fromAgentNotification(r.Context(), m)
		default:
			s.fromAgentAnswer(m)
		}
	}
	if len(reqs) == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	s.relay(w, r, reqs, batch)
}

// callDone is what an upstream call came back with.
type callDone struct {
	call   *ptCall
	result json.RawMessage
	rpcErr *upstream.RPCError
	err    error
}

// relay forwards the requests of one POST and writes their answers. A client that accepts
// event streams (every conformant one) gets one: the messages the upstream sends while
// working on these requests (see route), in order, then the responses, each as soon as it
// is there. A client that accepts only JSON gets the response (or, for a batch, the array
// of them), and what the upstream sends meanwhile goes to its GET stream.
func (s *ptSession) relay(w http.ResponseWriter, r *http.Request, reqs []rpcMessage, batch bool) {
	events := acceptsEvents(r)
	out := newOutbox()
	out.gone = !events // nothing is routed to a stream that cannot carry it
	results := make(chan callDone, len(reqs))
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		rpcFail(w, http.StatusNotFound, reqs[0].ID, codeRefused, "the session is closed; initialize a new one")
		return
	}
	for _, m := range reqs {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		c := &ptCall{agentID: m.ID, key: canon(m.ID), upID: s.up.NewID(), method: m.Method,
			token: progressToken(m.Params, "_meta"), out: out, cancel: cancel}
		s.calls = append(s.calls, c)
		if m.Method == string(mcp.MethodToolsCall) {
			s.e.sessions.countCall(s.id)
		}
		s.e.ptWG.Add(1)
		go s.run(ctx, c, m.Params, results)
	}
	s.mu.Unlock()

	if events {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		flush(w)
	}
	var answers []json.RawMessage
	for remaining := len(reqs); remaining > 0; {
		select {
		case <-out.wake:
			if writeEvents(w, s.take(out)) != nil {
				s.abandon(out)
				return
			}
		case d := <-results:
			remaining--
			resp := s.answer(d)
			if !events {
				if resp != nil {
					answers = append(answers, resp)
				}
				continue
			}
			// The call has left s.calls, so nothing more is routed to out for it; what
			// was routed before its answer came goes first.
			msgs := s.take(out)
			if resp != nil {
				msgs = append(msgs, resp)
			}
			if writeEvents(w, msgs) != nil {
				s.abandon(out)
				return
			}
		case <-r.Context().Done():
			// The agent went away: its calls go on upstream (a disconnect is not a
			// cancellation) but their answers have nowhere to go.
			s.abandon(out)
			return
		}
	}
	if events {
		return
	}
	switch {
	case batch && len(answers) > 0:
		writeJSON(w, http.StatusOK, answers)
	case len(answers) == 1:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(answers[0])
	default: // the agent cancelled it: there is no answer
		w.WriteHeader(http.StatusAccepted)
	}
}

// acceptsEvents reports whether the client takes text/event-stream answers.
func acceptsEvents(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
			if mt = strings.TrimSpace(mt); mt == "text/event-stream" || mt == "*/*" || mt == "text/*" {
				return true
			}
		}
	}
	return false
}

// run makes one upstream call and reports it. A call that timed out is cancelled
// upstream.
func (s *ptSession) run(ctx context.Context, c *ptCall, params json.RawMessage, results chan<- callDone) {
	defer s.e.ptWG.Done()
	res, rpcErr, err := s.up.Call(ctx, c.upID, c.method, params)
	c.cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		p, _ := encode(map[string]any{"requestId": c.upID, "reason": fmt.Sprintf("timed out after %s", s.timeout)})
		nctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.up.Notify(nctx, string(mcp.MethodNotificationCancelled), p)
		cancel()
	}
	s.mu.Lock()
	for i, x := range s.calls {
		if x == c {
			s.calls = append(s.calls[:i], s.calls[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	results <- callDone{call: c, result: res, rpcErr: rpcErr, err: err}
}

// answer encodes the response to the agent: the upstream's result or error unchanged, or a
// failure the proxy decided. Nil for a request the agent cancelled.
func (s *ptSession) answer(d callDone) []byte {
	var m wireMsg
	switch {
	case d.err == nil && d.rpcErr != nil:
		m = wireMsg{JSONRPC: "2.0", ID: d.call.agentID, Error: d.rpcErr}
	case d.err == nil:
		if len(d.result) == 0 {
			d.result = json.RawMessage("{}")
		}
		m = wireMsg{JSONRPC: "2.0", ID: d.call.agentID, Result: d.result}
	case d.call.cancelled.Load():
		return nil
	case errors.Is(d.err, context.DeadlineExceeded):
		m = failure(rpcMessage{ID: d.call.agentID, Method: d.call.method}, codeRequestTimeout,
			fmt.Sprintf("%s on %q timed out after %s", d.call.method, s.server, s.timeout))
	default:
		m = failure(rpcMessage{ID: d.call.agentID, Method: d.call.method}, mcp.INTERNAL_ERROR,
			fmt.Sprintf("%s on %q failed: %v", d.call.method, s.server, d.err))
	}
	data, err := encode(m)
	if err != nil {
		data, _ = encode(wireMsg{JSONRPC: "2.0", ID: d.call.agentID, Error: &upstream.RPCError{Code: mcp.INTERNAL_ERROR, Message: "encoding the answer failed"}})
	}
	return data
}

// failure is the answer to a request the proxy could not relay: a tool error for
// tools/call (so the agent's model sees the reason), a JSON-RPC error otherwise.
func failure(m rpcMessage, code int, msg string) wireMsg {
	if m.Method == string(mcp.MethodToolsCall) {
		res, _ := encode(map[string]any{"content": []any{map[string]any{"type": "text", "text": msg}}, "isError": true})
		return wireMsg{JSONRPC: "2.0", ID: m.ID, Result: res}
	}
	return wireMsg{JSONRPC: "2.0", ID: m.ID, Error: &upstream.RPCError{Code: code, Message: msg}}
}

// take empties a stream's queue.
func (s *ptSession) take(o *outbox) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	msgs := o.queue
	o.queue = nil
	return msgs
}

// abandon marks a POST stream unread; what was queued for it goes to the session's GET
// stream instead.
func (s *ptSession) abandon(o *outbox) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o.gone = true
	msgs := o.queue
	o.queue = nil
	for _, m := range msgs {
		s.toSessionLocked(m)
	}
}

// fromAgentNotification forwards an agent's notification. A cancellation names the agent's
// request id, which is translated to the upstream's, and stops waiting for that answer.
func (s *ptSession) fromAgentNotification(ctx context.Context, m rpcMessage) {
	params := m.Params
	if m.Method == string(mcp.MethodNotificationCancelled) {
		var p struct {
			RequestID json.RawMessage `json:"requestId"`
		}
		if json.Unmarshal(params, &p) != nil || !hasID(p.RequestID) {
			return
		}
		key := canon(p.RequestID)
		var c *ptCall
		s.mu.Lock()
		for _, x := range s.calls {
			if x.key == key {
				c = x
			}
		}
		s.mu.Unlock()
		if c == nil {
			return // nothing in flight by that id: nothing to cancel
		}
		var err error
		if params, err = setField(params, "requestId", c.upID); err != nil {
			return
		}
		c.cancelled.Store(true)
		defer c.cancel()
	}
	if err := s.up.Notify(ctx, m.Method, params); err != nil {
		s.e.log.Debug("forwarding a notification upstream failed", "server", s.server, "method", m.Method, "err", err)
	}
}

// fromAgentAnswer hands the agent's answer to the server-to-client request waiting for it.
func (s *ptSession) fromAgentAnswer(m rpcMessage) {
	a := agentAnswer{result: m.Result}
	if len(m.Error) > 0 {
		a.err = &upstream.RPCError{}
		if err := json.Unmarshal(m.Error, a.err); err != nil {
			a.err = &upstream.RPCError{Code: mcp.INTERNAL_ERROR, Message: "the client answered with a malformed error"}
		}
	}
	key := canon(m.ID)
	s.mu.Lock()
	ch := s.asks[key]
	delete(s.asks, key)
	s.mu.Unlock()
	if ch != nil {
		ch <- a
	}
}

// askAgent relays a server-to-client request (sampling, elicitation, roots, ping) to the
// agent under the upstream's own id (the connection is this session's alone) and waits for
// the answer, at most the request timeout.
func (s *ptSession) askAgent(ctx context.Context, id json.RawMessage, method string, params json.RawMessage) (json.RawMessage, *upstream.RPCError) {
	msg, err := encode(wireMsg{JSONRPC: "2.0", ID: id, Method: method, Params: params})
	if err != nil {
		return nil, &upstream.RPCError{Code: mcp.INTERNAL_ERROR, Message: "encoding the request failed"}
	}
	key := canon(id)
	ch := make(chan agentAnswer, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, &upstream.RPCError{Code: mcp.INTERNAL_ERROR, Message: "the client's session has ended"}
	}
	s.asks[key] = ch
	s.routeLocked(method, params, msg)
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		if s.asks != nil && s.asks[key] == ch {
			delete(s.asks, key)
		}
		s.mu.Unlock()
	}
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case a := <-ch:
		return a.result, a.err
	case <-ctx.Done():
		forget()
		return nil, &upstream.RPCError{Code: mcp.INTERNAL_ERROR, Message: "the connection is closing"}
	case <-s.done:
		return nil, &upstream.RPCError{Code: mcp.INTERNAL_ERROR, Message: "the client's session has ended"}
	case <-t.C:
		forget()
		return nil, &upstream.RPCError{Code: codeRequestTimeout, Message: fmt.Sprintf("the client did not answer %s within %s", method, s.timeout)}
	}
}

// fromUpstream routes a notification of the upstream to the agent. A cancellation of one of
// the upstream's own requests also stops waiting for the agent's answer.
func (s *ptSession) fromUpstream(method string, params json.RawMessage) {
	msg, err := encode(wireMsg{JSONRPC: "2.0", Method: method, Params: params})
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if method == string(mcp.MethodNotificationCancelled) {
		var p struct {
			RequestID json.RawMessage `json:"requestId"`
		}
		if json.Unmarshal(params, &p) == nil && hasID(p.RequestID) {
			key := canon(p.RequestID)
			if ch := s.asks[key]; ch != nil {
				delete(s.asks, key)
				ch <- agentAnswer{err: &upstream.RPCError{Code: mcp.REQUEST_INTERRUPTED, Message: "cancelled by the server"}}
			}
		}
	}
	s.routeLocked(method, params, msg)
}

// routeLocked picks the stream for a message of the upstream. On stdio nothing says which
// agent request a message belongs to, so:
//   - progress goes to the request that asked for it with that token;
//   - resource updates and list changes concern the session: the GET stream if open;
//   - anything else (log messages, sampling, elicitation, roots, ping) goes to the newest
//     request in flight, as the upstream is most likely working on it;
//   - otherwise the GET stream, or the backlog kept for the next one.
func (s *ptSession) routeLocked(method string, params json.RawMessage, msg []byte) {
	if s.closed {
		return
	}
	if method == string(mcp.MethodNotificationProgress) {
		if tok := progressToken(params, ""); tok != "" {
			for i := len(s.calls) - 1; i >= 0; i-- {
				if c := s.calls[i]; c.token == tok && !c.out.gone {
					c.out.push(msg)
					return
				}
			}
		}
	}
	if method == string(mcp.MethodNotificationResourceUpdated) || strings.HasSuffix(method, "/list_changed") {
		if s.get != nil {
			s.get.push(msg)
			return
		}
	}
	for i := len(s.calls) - 1; i >= 0; i-- {
		if c := s.calls[i]; !c.out.gone {
			c.out.push(msg)
			return
		}
	}
	s.toSessionLocked(msg)
}

// toSessionLocked sends a message on the GET stream, or keeps it for the next one (the
// oldest are dropped past maxBacklog).
func (s *ptSession) toSessionLocked(msg []byte) {
	if s.closed {
		return
	}
	if s.get != nil {
		s.get.push(msg)
		return
	}
	if len(s.backlog) >= maxBacklog {
		s.backlog = s.backlog[1:]
		s.dropped++
		if s.dropped == 1 || s.dropped%100 == 0 {
			s.e.log.Warn("passthrough session has no GET stream; dropping its oldest undelivered messages",
				"server", s.server, "session", s.id, "dropped", s.dropped)
		}
	}
	s.backlog = append(s.backlog, msg)
}

// stream serves the session's GET stream: what the upstream sends outside the agent's
// requests. A new GET replaces an older one (a client that reconnects may not have seen
// the old one break); undelivered messages move to it.
func (s *ptSession) stream(w http.ResponseWriter, r *http.Request) {
	box := newOutbox()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		rpcFail(w, http.StatusNotFound, nil, codeRefused, "the session is closed; initialize a new one")
		return
	}
	if old := s.get; old != nil {
		old.gone = true
		box.queue = append(box.queue, old.queue...)
		old.queue = nil
		old.signal() // so that it ends
	}
	box.queue = append(box.queue, s.backlog...)
	s.backlog = nil
	s.get = box
	if len(box.queue) > 0 {
		box.signal()
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.get == box {
			s.get = nil
			if !s.closed {
				s.backlog = append(box.queue, s.backlog...)
			}
		}
		box.queue = nil
		s.mu.Unlock()
	}()

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flush(w)
	var beat <-chan time.Time
	if s.e.opts.Heartbeat > 0 {
		t := time.NewTicker(s.e.opts.Heartbeat)
		defer t.Stop()
		beat = t.C
	}
	for {
		select {
		case <-box.wake:
			s.mu.Lock()
			msgs, gone := box.queue, box.gone
			box.queue = nil
			s.mu.Unlock()
			if gone {
				return
			}
			if err := writeEvents(w, msgs); err != nil {
				s.mu.Lock()
				box.queue = append(msgs, box.queue...)
				s.mu.Unlock()
				return
			}
		case <-beat:
			if _, err := w.Write([]byte(": keepalive\n\n")); err != nil {
				return
			}
			flush(w)
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}

// writeEvents writes messages as SSE "message" events and flushes.
func writeEvents(w http.ResponseWriter, msgs [][]byte) error {
	var b bytes.Buffer
	for _, m := range msgs {
		if len(m) == 0 {
			continue
		}
		b.WriteString("event: message\ndata: ")
		b.Write(m)
		b.WriteString("\n\n")
	}
	if b.Len() == 0 {
		return nil
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return err
	}
	flush(w)
	return nil
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// rpcMessage is one JSON-RPC message from the agent, fields raw.
type rpcMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

func (m rpcMessage) isRequest() bool { return m.Method != "" && hasID(m.ID) }

// parseMessages reads a POST body: one message, or a batch (protocol 2025-03-26).
func parseMessages(body []byte) ([]rpcMessage, bool, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, false, errors.New("empty body: a JSON-RPC message is expected")
	}
	var msgs []rpcMessage
	batch := body[0] == '['
	if batch {
		if err := json.Unmarshal(body, &msgs); err != nil {
			return nil, true, fmt.Errorf("parse error: %v", err)
		}
		if len(msgs) == 0 {
			return nil, true, errors.New("empty batch")
		}
	} else {
		var m rpcMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, false, fmt.Errorf("parse error: %v", err)
		}
		msgs = []rpcMessage{m}
	}
	for _, m := range msgs {
		if m.Method == "" && (!hasID(m.ID) || (len(m.Result) == 0 && len(m.Error) == 0)) {
			return nil, batch, errors.New("invalid JSON-RPC message: neither a request, a notification nor a response")
		}
	}
	return msgs, batch, nil
}

// wireMsg is a JSON-RPC message to send; raw fields pass unchanged (but compacted).
type wireMsg struct {
	JSONRPC string             `json:"jsonrpc"`
	ID      json.RawMessage    `json:"id,omitempty"`
	Method  string             `json:"method,omitempty"`
	Params  json.RawMessage    `json:"params,omitempty"`
	Result  json.RawMessage    `json:"result,omitempty"`
	Error   *upstream.RPCError `json:"error,omitempty"`
}

// encode marshals v compactly on one line, without escaping <, > and &.
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func hasID(id json.RawMessage) bool { return len(id) > 0 && string(id) != "null" }

// canon is the key of a JSON-RPC id or progress token: its compact JSON text.
func canon(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

// progressToken returns the canonical progressToken of params (under params._meta when
// under is "_meta"), "" if there is none.
func progressToken(params json.RawMessage, under string) string {
	if len(params) == 0 {
		return ""
	}
	var tok json.RawMessage
	if under == "" {
		var p struct {
			Token json.RawMessage `json:"progressToken"`
		}
		if json.Unmarshal(params, &p) != nil {
			return ""
		}
		tok = p.Token
	} else {
		var p struct {
			Meta struct {
				Token json.RawMessage `json:"progressToken"`
			} `json:"_meta"`
		}
		if json.Unmarshal(params, &p) != nil {
			return ""
		}
		tok = p.Meta.Token
	}
	if !hasID(tok) {
		return ""
	}
	return canon(tok)
}

// setField returns params with one top-level field replaced; the others stay as they are.
func setField(params json.RawMessage, key string, v any) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(params) > 0 {
		if err := json.Unmarshal(params, &m); err != nil {
			return nil, err
		}
	}
	val, err := encode(v)
	if err != nil {
		return nil, err
	}
	m[key] = val
	return encode(m)
}
