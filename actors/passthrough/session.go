// Package passthrough is the session actor behind /mcp/server/{name}: one agent session
// with a connection of its own to one upstream server (for stdio, a process of its own),
// over which JSON-RPC passes raw in both directions, so schemas and unknown fields are
// untouched. See "Passthrough sessions" in package actors for why a connection per session.
//
// A session actor is a child of the sessions actor (actors/sessions.go), which owns the MCP
// session table: it spawns the session once the registry has said the server may be used,
// accounts for every request of the agent and forwards it here with the HTTP handler as the
// sender, and stops the session (Close) when the agent ends it, it idles out, it is evicted,
// the registry revokes its server, or the daemon stops. The HTTP side (http/mcpserver)
// keeps only the streamable-HTTP framing: it parses bodies, hands each response stream in
// as a Stream, and writes what the session puts there.
//
// # What the session owns
//
// Its upstream connection (Upstream, dialled with the agent's own initialize, closed when
// the actor stops); the requests in flight and their id mapping (agent requests go upstream
// under ids of the connection's own and their answers come back under the agent's id); the
// routing of what the upstream sends on its own (notifications, and server-to-client
// requests such as sampling, elicitation and roots, which must reach this agent) to one of
// the session's streams; the server-to-client requests waiting for the agent's answer; the
// backlog kept for the next GET stream; and the server's tool rules with the definition hash
// of each tool its connection listed (tools.go), by which tools/list answers are filtered
// and tools/call requests refused before they go upstream.
//
// # Messages
//
// From the owner, forwarded with the HTTP handler as sender:
//
//	Post    the messages of one POST -> Accepted, once its notifications are written upstream
//	Listen  a GET stream, which replaces an older one -> Accepted
//	Done    the handler is finished with a stream (no reply)
//	Close   end the session (no reply; the owner sees the actor terminate)
//	SetRules  new tool rules of the server (tools.go; no reply)
//
// To the owner: Opened or OpenFailed once, Lost when the connection goes by itself,
// Unapproved after a tools/list answer that listed tools awaiting review.
//
// Internal, from the session's own goroutines (dialling, one per upstream call, writing
// notifications, watching the connection, answering a server-to-client request): openDone,
// callDone (tagged with the call's number), notified (tagged with the post's), fromUpstream,
// upstreamAsk, askGone, connLost. A session has one connection in its life, so the
// connection is the generation: what arrives after the actor stopped is dropped.
//
// No I/O runs in Receive except in Stopping, which closes the connection synchronously
// (bounded, about 1.5 s for a process group) so that when the owner sees the actor
// terminated, the session's process is gone.
package passthrough

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors/activity"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
	"github.com/mcpproxy/mcpproxy/config"
)

// Target is what a session needs to open its connection: the registry's answer for a
// reachable server.
type Target struct {
	// Config is the server's config with ${secret:} and ${env:} references expanded and its
	// Docker isolation fixed, as its upstream actor dials it.
	Config config.ServerConfig
	// Dial holds the daemon's dial options (logger, client info, Docker wrapper) and the
	// Scrubber of the resolved config, so that the session's errors are scrubbed as the
	// shared connection's are.
	Dial upstream.Options
	// Timeout is call_tool_timeout: it bounds each request forwarded to the upstream and
	// each server-to-client request waiting for the agent.
	Timeout time.Duration
	// Gen is the registry's generation when it gave this target; a revocation names the
	// generation below which sessions end (see actors.RevokePassthrough).
	Gen int
	// Tools are the server's tool rules when the target was given (tool-level trust).
	Tools ToolRules
	// ReadOnly is the readOnlyHint of the server's tools as the registry last listed them,
	// for Options.Visible before the session's own tools/list.
	ReadOnly map[string]bool
}

// String and LogValue keep the resolved config, which holds the server's secrets, out of
// anything that prints a target (protoactor logs an undelivered message with %+v).
func (t Target) String() string {
	return fmt.Sprintf("PassthroughTarget{server %q, gen %d}", t.Config.Name, t.Gen)
}

// LogValue: see String.
func (t Target) LogValue() slog.Value { return slog.StringValue(t.String()) }

// Upstream is one session's own connection to its server. *upstream.RawConn implements it.
type Upstream interface {
	NewID() int64
	Call(ctx context.Context, id int64, method string, params json.RawMessage) (json.RawMessage, *upstream.RPCError, error)
	Notify(ctx context.Context, method string, params json.RawMessage) error
	SetProtocolVersion(v string)
	Done() <-chan struct{}
	Close() error
}

// DialFunc opens a session's connection to the server t describes; h receives what the
// server sends on its own. ctx bounds the dial only.
type DialFunc func(ctx context.Context, t Target, h upstream.RawHandlers) (Upstream, error)

// DialRaw is the default DialFunc: upstream.DialRaw with the daemon's dial options.
func DialRaw(ctx context.Context, t Target, h upstream.RawHandlers) (Upstream, error) {
	c, err := upstream.DialRaw(ctx, t.Config, t.Dial, h)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Limits and timeouts.
const (
	// DefaultInitTimeout bounds starting a session's upstream and its initialize.
	DefaultInitTimeout = 60 * time.Second
	// maxBacklog bounds the messages kept for a session's next GET stream.
	maxBacklog = 1000
	// cancelTimeout bounds telling the upstream that a request timed out.
	cancelTimeout = 5 * time.Second
)

// Options configure one session actor. ID, Server, Target, Init and Dial are required.
type Options struct {
	// ID is the MCP session id, for logs and the owner's bookkeeping.
	ID     string
	Server string
	Target Target
	// Init is the params of the agent's initialize, as they go upstream (see InitParams).
	Init json.RawMessage
	Dial DialFunc
	// Logger default discards.
	Logger *slog.Logger
	// InitTimeout default DefaultInitTimeout.
	InitTimeout time.Duration
	// Activity takes the activity record of each Recorded request when its answer is
	// matched (activity.go); nil records none. It must not block.
	Activity func(activity.Record)
	// Visible, if set, says which tools the agent may see and call (visible.go): its
	// tools/list answers show only those, and a tools/call of another is refused.
	Visible func(tool string, readOnly bool) bool
}

// NewProps returns the props of one session actor.
func NewProps(o Options) *actor.Props {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.InitTimeout <= 0 {
		o.InitTimeout = DefaultInitTimeout
	}
	if o.Dial == nil {
		o.Dial = DialRaw
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &session{o: o, streams: map[*Stream]*stream{}, asks: map[string]chan answer{}, posts: map[int]*pendingPost{}}
	})
}

// Messages from the owner.
type (
	// Post carries the messages of one POST: requests are relayed (their answers, and what
	// the upstream sends while working on them, go to Out), notifications and the agent's
	// answers to server-to-client requests go upstream. The reply, Accepted, comes once the
	// notifications are written, so that an agent's next request cannot overtake them
	// (notifications/initialized must reach the server first).
	Post struct {
		Msgs []Message
		Out  *Stream
		// Credential names the credential the POST presented (actors.Caller), for the
		// activity records of its requests.
		Credential string
	}
	// Listen makes Out the session's GET stream, replacing an older one (a client that
	// reconnects may not have seen the old one break); undelivered messages move to it.
	Listen struct{ Out *Stream }
	// Done says the HTTP handler has stopped writing Out: a POST stream's remaining
	// messages (answers aside) go to the GET stream, a GET stream's back to the backlog.
	Done struct{ Out *Stream }
	// Close ends the session: its streams end, its requests are answered with an error, and
	// its connection is closed.
	Close struct{ Reason string }
	// Accepted answers Post and Listen.
	Accepted struct{}
)

// Messages to the owner.
type (
	// Opened says the upstream answered the agent's initialize: Result is its answer, for
	// the agent. Error set means it refused (or answered a protocol this endpoint does not
	// speak): the agent gets that JSON-RPC error and the session is of no further use.
	Opened struct {
		ID     string
		Result json.RawMessage
		Error  *upstream.RPCError
	}
	// OpenFailed says the connection could not be dialled or initialized.
	OpenFailed struct {
		ID  string
		Err error
	}
	// Lost says the connection ended by itself (the process exited, the remote went away).
	Lost struct{ ID string }
)

// Internal messages, from the session's own goroutines. They may arrive after the actor
// has stopped, so they are not logged as dead letters.
type (
	openDone struct{}
	callDone struct {
		seq    int
		result json.RawMessage
		rpcErr *upstream.RPCError
		err    error
		out    outcome
	}
	notified     struct{ post int }
	fromUpstream struct {
		method string
		params json.RawMessage
	}
	upstreamAsk struct {
		id     json.RawMessage
		method string
		params json.RawMessage
		reply  chan answer
	}
	askGone struct {
		key   string
		reply chan answer
	}
	connLost struct{}
)

// IgnoreDeadLetterLogging: an HTTP handler that gave up no longer waits for it.
func (Accepted) IgnoreDeadLetterLogging() {}

func (openDone) IgnoreDeadLetterLogging()     {}
func (callDone) IgnoreDeadLetterLogging()     {}
func (notified) IgnoreDeadLetterLogging()     {}
func (fromUpstream) IgnoreDeadLetterLogging() {}
func (upstreamAsk) IgnoreDeadLetterLogging()  {}
func (askGone) IgnoreDeadLetterLogging()      {}
func (connLost) IgnoreDeadLetterLogging()     {}

// answer is the agent's answer to a server-to-client request.
type answer struct {
	result json.RawMessage
	err    *upstream.RPCError
}

// openResult is what the dialling goroutine hands over.
type openResult struct {
	up     Upstream
	result json.RawMessage
	rpcErr *upstream.RPCError
	err    error
}

// session is the actor. All fields are its own; the goroutines it starts get copies.
type session struct {
	o       Options
	sys     *actor.ActorSystem
	self    *actor.PID
	timeout time.Duration
	up      Upstream
	stopped bool
	reason  string // why the owner closed it

	// opening is where the dialling goroutine hands its result, until it is taken.
	opening    chan openResult
	cancelOpen context.CancelFunc

	client  activity.ClientInfo // the agent's, from its initialize
	seq     int
	calls   []*call              // requests in flight upstream, oldest first
	posts   map[int]*pendingPost // posts whose notifications are being written
	streams map[*Stream]*stream  // POST streams with answers to come
	get     *Stream              // the GET stream, nil when none is open
	backlog [][]byte             // for the next GET stream
	dropped int
	asks    map[string]chan answer // server-to-client requests awaiting the agent, by id
	// rules decide which tools the agent sees and may call (tools.go); seen is each tool's
	// definition hash as this session's connection last listed it.
	rules  ToolRules
	seen   map[string]string
	parent *actor.PID // the owner, told Unapproved
	// readOnly is the readOnlyHint of each tool the session's tools/list answers named.
	readOnly map[string]bool
}

// stream is the session's view of one POST stream.
type stream struct {
	out       *Stream
	routable  bool // an event stream the handler still writes
	pending   int  // requests of its POST not answered yet
	abandoned bool // the handler stopped writing it
}

// call is one agent request on its way upstream.
type call struct {
	seq       int
	agentID   json.RawMessage
	key       string // canonical agent id
	upID      int64
	method    string
	params    json.RawMessage // until started
	token     string          // canonical progress token, "" if none
	st        *stream
	cancel    context.CancelFunc
	cancelled bool // the agent sent notifications/cancelled for it
	// rec is the call's activity record, nil for a request the log does not keep.
	rec *activity.Record
}

// pendingPost is a post waiting for its notifications to be written.
type pendingPost struct {
	sender *actor.PID
	calls  []*call
}

func (s *session) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.start(ctx)
	case *actor.Stopping:
		s.stop(ctx)
	case openDone:
		s.onOpen(ctx)
	case Post:
		s.post(ctx, m)
	case notified:
		s.onNotified(ctx, m)
	case callDone:
		s.onCallDone(m)
	case Listen:
		s.listen(m.Out)
		ctx.Respond(Accepted{})
	case Done:
		s.done(m.Out)
	case fromUpstream:
		s.fromUpstream(m)
	case upstreamAsk:
		s.onAsk(m)
	case askGone:
		if s.asks[m.key] == m.reply {
			delete(s.asks, m.key)
		}
	case connLost:
		if !s.stopped {
			ctx.Send(ctx.Parent(), Lost{ID: s.o.ID})
		}
	case SetRules:
		s.setRules(m.Rules)
	case Close:
		s.reason = m.Reason
		ctx.Stop(ctx.Self())
	}
}

// start dials the connection and sends the agent's initialize in a goroutine, which hands
// its result over through s.opening.
func (s *session) start(ctx actor.Context) {
	s.sys, s.self = ctx.ActorSystem(), ctx.Self()
	s.rules = s.o.Target.Tools
	s.client = clientInfo(s.o.Init)
	s.parent = ctx.Parent()
	s.timeout = s.o.Target.Timeout
	if s.timeout <= 0 {
		s.timeout = config.DefaultCallToolTimeout
	}
	octx, cancel := context.WithTimeout(context.Background(), s.o.InitTimeout)
	res := make(chan openResult, 1)
	s.opening, s.cancelOpen = res, cancel
	sys, self, o := s.sys, s.self, s.o
	h := upstream.RawHandlers{
		// Sent before the read loop hands over the response that follows, so the session
		// routes it ahead of that answer.
		Notification: func(method string, params json.RawMessage) {
			sys.Root.Send(self, fromUpstream{method: method, params: params})
		},
		Request: askAgent(sys, self, s.timeout),
	}
	go func() {
		defer cancel()
		var r openResult
		r.up, r.err = o.Dial(octx, o.Target, h)
		if r.err != nil {
			r.err = fmt.Errorf("starting %q for this session failed: %w", o.Server, r.err)
		} else {
			r.result, r.rpcErr, r.err = r.up.Call(octx, r.up.NewID(), string(mcp.MethodInitialize), o.Init)
			if r.err != nil {
				r.err = fmt.Errorf("initialize of %q failed: %w", o.Server, r.err)
			}
		}
		res <- r
		sys.Root.Send(self, openDone{})
	}()
}

// onOpen takes the dial's result and tells the owner.
func (s *session) onOpen(ctx actor.Context) {
	if s.opening == nil {
		return // taken by stop
	}
	r := <-s.opening
	s.opening = nil
	s.up = r.up // closed when the actor stops, whatever the outcome
	switch {
	case r.err != nil:
		ctx.Send(ctx.Parent(), OpenFailed{ID: s.o.ID, Err: r.err})
		return
	case r.rpcErr != nil:
		ctx.Send(ctx.Parent(), Opened{ID: s.o.ID, Error: r.rpcErr})
		return
	}
	var negotiated struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if json.Unmarshal(r.result, &negotiated) != nil || !slices.Contains(mcp.LegacyProtocolVersions(), negotiated.ProtocolVersion) {
		ctx.Send(ctx.Parent(), Opened{ID: s.o.ID, Error: &upstream.RPCError{Code: mcp.INTERNAL_ERROR,
			Message: fmt.Sprintf("server %q answered protocol version %q, which /mcp/server/ does not speak", s.o.Server, negotiated.ProtocolVersion)}})
		return
	}
	r.up.SetProtocolVersion(negotiated.ProtocolVersion)
	up, sys, self := r.up, s.sys, s.self
	go func() {
		<-up.Done()
		sys.Root.Send(self, connLost{})
	}()
	ctx.Send(ctx.Parent(), Opened{ID: s.o.ID, Result: r.result})
}

// askAgent returns the handler of server-to-client requests (sampling, elicitation, roots,
// ping). It runs in the connection's goroutine for that request: it hands the request to
// the session, which routes it to the agent under the upstream's own id (the connection is
// this session's alone), and waits for the agent's answer, at most timeout.
func askAgent(sys *actor.ActorSystem, self *actor.PID, timeout time.Duration) func(context.Context, json.RawMessage, string, json.RawMessage) (json.RawMessage, *upstream.RPCError) {
	return func(ctx context.Context, id json.RawMessage, method string, params json.RawMessage) (json.RawMessage, *upstream.RPCError) {
		reply := make(chan answer, 1)
		sys.Root.Send(self, upstreamAsk{id: id, method: method, params: params, reply: reply})
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case a := <-reply:
			return a.result, a.err
		case <-ctx.Done():
			sys.Root.Send(self, askGone{key: canon(id), reply: reply})
			return nil, &upstream.RPCError{Code: mcp.INTERNAL_ERROR, Message: "the connection is closing"}
		case <-t.C:
			sys.Root.Send(self, askGone{key: canon(id), reply: reply})
			return nil, &upstream.RPCError{Code: CodeRequestTimeout, Message: fmt.Sprintf("the client did not answer %s within %s", method, timeout)}
		}
	}
}

// post handles the messages of one POST. The agent's answers are handed over at once;
// notifications are written upstream in a goroutine, in order, and the requests start
// once they are written, as the reply does.
func (s *session) post(ctx actor.Context, m Post) {
	st := &stream{out: m.Out, routable: m.Out.events}
	var notes []note
	var calls []*call
	for _, msg := range m.Msgs {
		switch {
		case msg.IsRequest():
			s.seq++
			c := &call{seq: s.seq, agentID: msg.ID, key: canon(msg.ID), method: msg.Method, params: msg.Params,
				token: progressToken(msg.Params, "_meta"), st: st, rec: s.newRecord(msg, m.Credential)}
			calls = append(calls, c)
		case msg.Method == string(mcp.MethodNotificationCancelled):
			if n, c := s.cancellation(msg); c != nil {
				// The call stops waiting right after the upstream is told, so that an
				// error the upstream answers the cancelled request with is not relayed.
				notes = append(notes, note{msg: n, then: c.cancel})
			}
		case msg.Method != "":
			notes = append(notes, note{msg: msg})
		default:
			s.answerAsk(msg)
		}
	}
	st.pending = len(calls)
	if s.stopped || s.up == nil {
		for _, c := range calls {
			s.failCall(c, "the session is closed")
		}
		ctx.Respond(Accepted{})
		return
	}
	if len(calls) > 0 {
		s.streams[m.Out] = st
	}
	// Calls the tool rules refuse are answered here and never go upstream.
	relayed := calls[:0]
	for _, c := range calls {
		if refusal := s.refuseCall(c); refusal != nil {
			s.finishCall(c, refusal)
			continue
		}
		c.upID = s.up.NewID()
		relayed = append(relayed, c)
	}
	calls = relayed
	if len(notes) == 0 {
		s.startCalls(calls)
		ctx.Respond(Accepted{})
		return
	}
	s.seq++
	id := s.seq
	s.posts[id] = &pendingPost{sender: ctx.Sender(), calls: calls}
	up, sys, self, timeout, server, log := s.up, s.sys, s.self, s.timeout, s.o.Server, s.o.Logger
	go func() {
		for _, n := range notes {
			nctx, cancel := context.WithTimeout(context.Background(), timeout)
			if err := up.Notify(nctx, n.msg.Method, n.msg.Params); err != nil {
				log.Debug("forwarding a notification upstream failed", "server", server, "method", n.msg.Method, "err", err)
			}
			cancel()
			if n.then != nil {
				n.then()
			}
		}
		sys.Root.Send(self, notified{post: id})
	}()
}

// note is a notification on its way upstream; then, if set, runs once it is written.
type note struct {
	msg  Message
	then context.CancelFunc
}

// cancellation translates an agent's notifications/cancelled to the upstream's id of that
// request; nil if nothing by that id is in flight (then there is nothing to cancel and
// nothing is sent).
func (s *session) cancellation(m Message) (Message, *call) {
	var p struct {
		RequestID json.RawMessage `json:"requestId"`
	}
	if json.Unmarshal(m.Params, &p) != nil || !upstream.HasID(p.RequestID) {
		return Message{}, nil
	}
	key := canon(p.RequestID)
	var c *call
	for _, x := range s.calls {
		if x.key == key {
			c = x
		}
	}
	if c == nil {
		return Message{}, nil
	}
	params, err := setField(m.Params, "requestId", c.upID)
	if err != nil {
		return Message{}, nil
	}
	c.cancelled = true
	return Message{Method: m.Method, Params: params}, c
}

// onNotified finishes a post whose notifications are written: its requests start, and the
// agent is answered.
func (s *session) onNotified(ctx actor.Context, m notified) {
	p := s.posts[m.post]
	if p == nil {
		return
	}
	delete(s.posts, m.post)
	s.startCalls(p.calls)
	ctx.Send(p.sender, Accepted{})
}

// startCalls sends requests upstream, each from its own goroutine, which reports the
// answer with the call's number.
func (s *session) startCalls(calls []*call) {
	for _, c := range calls {
		cctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		c.cancel = cancel
		s.calls = append(s.calls, c)
		up, sys, self, timeout, seq, id, method, params := s.up, s.sys, s.self, s.timeout, c.seq, c.upID, c.method, c.params
		c.params = nil
		go func() {
			began := time.Now()
			res, rpcErr, err := up.Call(cctx, id, method, params)
			took := time.Since(began)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				// A request past its time is cancelled upstream too, so the server stops
				// working on it.
				p, _ := Encode(map[string]any{"requestId": id, "reason": fmt.Sprintf("timed out after %s", timeout)})
				nctx, ncancel := context.WithTimeout(context.Background(), cancelTimeout)
				_ = up.Notify(nctx, string(mcp.MethodNotificationCancelled), p)
				ncancel()
			}
			out := inspect(method, res)
			out.took = took
			sys.Root.Send(self, callDone{seq: seq, result: res, rpcErr: rpcErr, err: err, out: out})
		}()
	}
}

// onCallDone writes a request's answer to its stream. The call leaves s.calls first, so
// nothing more is routed to that stream for it; what was routed before comes first.
func (s *session) onCallDone(d callDone) {
	i := slices.IndexFunc(s.calls, func(c *call) bool { return c.seq == d.seq })
	if i < 0 {
		return
	}
	c := s.calls[i]
	s.calls = slices.Delete(s.calls, i, i+1)
	s.record(c, &d, "")
	s.finishCall(c, s.answer(c, d))
}

// finishCall puts a request's answer (nil for none) on its stream and ends the stream
// when its POST has no request left.
func (s *session) finishCall(c *call, resp []byte) {
	st := c.st
	st.pending--
	if !st.abandoned && resp != nil {
		st.out.push(resp, true)
	}
	if st.pending <= 0 {
		if !st.abandoned {
			st.out.end()
		}
		delete(s.streams, st.out)
	}
}

// failCall answers a request the session can no longer relay.
func (s *session) failCall(c *call, why string) {
	s.record(c, nil, why)
	if c.cancelled {
		s.finishCall(c, nil)
		return
	}
	data, err := Encode(Failure(Message{ID: c.agentID, Method: c.method}, mcp.INTERNAL_ERROR,
		fmt.Sprintf("%s on %q failed: %s", c.method, s.o.Server, why)))
	if err != nil {
		data = nil
	}
	s.finishCall(c, data)
}

// answer encodes the response to the agent: the upstream's result or error unchanged, or a
// failure the proxy decided. Nil for a request the agent cancelled, whatever came back: the
// agent ignores an answer after its cancellation (MCP says so), and an upstream that
// answers the cancelled request anyway (with an error, as mcp-go's servers do) races the
// cancellation, so relaying what wins would make the outcome a matter of timing.
func (s *session) answer(c *call, d callDone) []byte {
	var m Wire
	switch {
	case c.cancelled:
		return nil
	case d.err == nil && d.rpcErr != nil:
		m = Wire{JSONRPC: "2.0", ID: c.agentID, Error: d.rpcErr}
	case d.err == nil:
		if len(d.result) == 0 {
			d.result = json.RawMessage("{}")
		}
		if c.method == string(mcp.MethodToolsList) {
			d.result = s.filterTools(d.result)
		}
		m = Wire{JSONRPC: "2.0", ID: c.agentID, Result: d.result}
	case errors.Is(d.err, context.DeadlineExceeded):
		m = Failure(Message{ID: c.agentID, Method: c.method}, CodeRequestTimeout,
			fmt.Sprintf("%s on %q timed out after %s", c.method, s.o.Server, s.timeout))
	default:
		m = Failure(Message{ID: c.agentID, Method: c.method}, mcp.INTERNAL_ERROR,
			fmt.Sprintf("%s on %q failed: %v", c.method, s.o.Server, d.err))
	}
	data, err := Encode(m)
	if err != nil {
		data, _ = Encode(Wire{JSONRPC: "2.0", ID: c.agentID, Error: &upstream.RPCError{Code: mcp.INTERNAL_ERROR, Message: "encoding the answer failed"}})
	}
	return data
}

// answerAsk hands the agent's answer to the server-to-client request waiting for it.
func (s *session) answerAsk(m Message) {
	a := answer{result: m.Result}
	if len(m.Error) > 0 {
		a.err = &upstream.RPCError{}
		if err := json.Unmarshal(m.Error, a.err); err != nil {
			a.err = &upstream.RPCError{Code: mcp.INTERNAL_ERROR, Message: "the client answered with a malformed error"}
		}
	}
	key := canon(m.ID)
	if ch := s.asks[key]; ch != nil {
		delete(s.asks, key)
		reply(ch, a)
	}
}

// reply hands an answer to a waiting request; its channel has room for exactly one.
func reply(ch chan answer, a answer) {
	select {
	case ch <- a:
	default:
	}
}

// onAsk routes a server-to-client request to the agent and remembers who waits for it.
func (s *session) onAsk(m upstreamAsk) {
	if s.stopped {
		reply(m.reply, answer{err: &upstream.RPCError{Code: mcp.INTERNAL_ERROR, Message: "the client's session has ended"}})
		return
	}
	msg, err := Encode(Wire{JSONRPC: "2.0", ID: m.id, Method: m.method, Params: m.params})
	if err != nil {
		reply(m.reply, answer{err: &upstream.RPCError{Code: mcp.INTERNAL_ERROR, Message: "encoding the request failed"}})
		return
	}
	s.asks[canon(m.id)] = m.reply
	s.route(m.method, m.params, msg)
}

// fromUpstream routes a notification of the upstream to the agent. A cancellation of one
// of the upstream's own requests also stops waiting for the agent's answer.
func (s *session) fromUpstream(m fromUpstream) {
	if s.stopped {
		return
	}
	msg, err := Encode(Wire{JSONRPC: "2.0", Method: m.method, Params: m.params})
	if err != nil {
		return
	}
	if m.method == string(mcp.MethodNotificationCancelled) {
		var p struct {
			RequestID json.RawMessage `json:"requestId"`
		}
		if json.Unmarshal(m.params, &p) == nil && upstream.HasID(p.RequestID) {
			key := canon(p.RequestID)
			if ch := s.asks[key]; ch != nil {
				delete(s.asks, key)
				reply(ch, answer{err: &upstream.RPCError{Code: mcp.REQUEST_INTERRUPTED, Message: "cancelled by the server"}})
			}
		}
	}
	s.route(m.method, m.params, msg)
}

// route picks the stream for a message of the upstream. On stdio nothing says which agent
// request a message belongs to, so:
//   - progress goes to the request that asked for it with that token;
//   - resource updates and list changes concern the session: the GET stream if open;
//   - anything else (log messages, sampling, elicitation, roots, ping) goes to the newest
//     request in flight, as the upstream is most likely working on it;
//   - otherwise the GET stream, or the backlog kept for the next one.
func (s *session) route(method string, params json.RawMessage, msg []byte) {
	if method == string(mcp.MethodNotificationProgress) {
		if tok := progressToken(params, ""); tok != "" {
			for i := len(s.calls) - 1; i >= 0; i-- {
				if c := s.calls[i]; c.token == tok && c.st.routable && !c.st.abandoned {
					c.st.out.push(msg, false)
					return
				}
			}
		}
	}
	if method == string(mcp.MethodNotificationResourceUpdated) || strings.HasSuffix(method, "/list_changed") {
		if s.get != nil {
			s.get.push(msg, false)
			return
		}
	}
	for i := len(s.calls) - 1; i >= 0; i-- {
		if c := s.calls[i]; c.st.routable && !c.st.abandoned {
			c.st.out.push(msg, false)
			return
		}
	}
	s.toSession(msg)
}

// toSession sends a message on the GET stream, or keeps it for the next one (the oldest
// are dropped past maxBacklog).
func (s *session) toSession(msg []byte) {
	if s.stopped {
		return
	}
	if s.get != nil {
		s.get.push(msg, false)
		return
	}
	if len(s.backlog) >= maxBacklog {
		s.backlog = s.backlog[1:]
		s.dropped++
		if s.dropped == 1 || s.dropped%100 == 0 {
			s.o.Logger.Warn("passthrough session has no GET stream; dropping its oldest undelivered messages",
				"server", s.o.Server, "session", s.o.ID, "dropped", s.dropped)
		}
	}
	s.backlog = append(s.backlog, msg)
}

// listen makes out the GET stream.
func (s *session) listen(out *Stream) {
	if s.stopped {
		out.end()
		return
	}
	if old := s.get; old != nil {
		for _, m := range old.drain() {
			out.push(m, false)
		}
		old.end() // so that its handler returns
	}
	for _, m := range s.backlog {
		out.push(m, false)
	}
	s.backlog = nil
	s.get = out
}

// done forgets a stream its handler has stopped writing.
func (s *session) done(out *Stream) {
	if s.stopped {
		return
	}
	if out == s.get {
		s.get = nil
		s.backlog = append(out.drain(), s.backlog...)
		return
	}
	if st := s.streams[out]; st != nil {
		// The agent went away: its requests go on upstream (a disconnect is not a
		// cancellation) but their answers have nowhere to go.
		st.abandoned = true
		delete(s.streams, out)
	}
	for _, m := range out.drain() {
		s.toSession(m)
	}
}

// stop ends the session: a dial in progress is cancelled (and what it opened closed), the
// requests in flight are answered with an error, the agent's waiting requests learn that
// the session has ended, the streams end, and the connection is closed before the actor is
// gone.
func (s *session) stop(ctx actor.Context) {
	if s.stopped {
		return
	}
	if s.opening != nil {
		s.cancelOpen()
		r := <-s.opening
		s.opening = nil
		if r.up != nil {
			s.up = r.up
		}
	}
	why := "the session was closed"
	if s.reason != "" {
		why += " (" + s.reason + ")"
	}
	for _, c := range s.calls {
		c.cancel()
		s.failCall(c, why)
	}
	s.calls = nil
	for _, p := range s.posts {
		for _, c := range p.calls {
			s.failCall(c, why)
		}
		ctx.Send(p.sender, Accepted{})
	}
	s.posts = nil
	for key, ch := range s.asks {
		reply(ch, answer{err: &upstream.RPCError{Code: mcp.INTERNAL_ERROR, Message: "the client's session has ended"}})
		delete(s.asks, key)
	}
	for out := range s.streams {
		out.end()
	}
	s.streams = nil
	if s.get != nil {
		s.get.end()
		s.get = nil
	}
	s.backlog = nil
	s.stopped = true
	if s.up != nil {
		_ = s.up.Close()
	}
	s.o.Logger.Debug("passthrough session closed", "server", s.o.Server, "session", s.o.ID, "reason", s.reason)
}
