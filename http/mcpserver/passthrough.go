package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
	mhttp "github.com/mcpproxy/mcpproxy/http"
)

// Upstream is one agent session's own connection to its server on /mcp/server/{name}.
// *upstream.RawConn implements it.
type Upstream interface {
	NewID() int64
	Call(ctx context.Context, id int64, method string, params json.RawMessage) (json.RawMessage, *upstream.RPCError, error)
	Notify(ctx context.Context, method string, params json.RawMessage) error
	SetProtocolVersion(v string)
	Done() <-chan struct{}
	Close() error
}

// DialFunc opens an agent session's connection to the server t describes; h receives what
// the server sends on its own. ctx bounds the dial only.
type DialFunc func(ctx context.Context, t actors.PassthroughTarget, h upstream.RawHandlers) (Upstream, error)

// DialRaw is the default DialFunc: upstream.DialRaw with the daemon's dial options.
func DialRaw(ctx context.Context, t actors.PassthroughTarget, h upstream.RawHandlers) (Upstream, error) {
	c, err := upstream.DialRaw(ctx, t.Config, t.Dial, h)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Passthrough limits and timeouts.
const (
	// DefaultPassthroughSessions bounds the agent sessions (each with its own upstream
	// connection) of one server on /mcp/server/{name}.
	DefaultPassthroughSessions = 32
	// passthroughInitTimeout bounds starting a session's upstream and its initialize.
	passthroughInitTimeout = 60 * time.Second
	// passthroughSweep is how often sessions are checked against quarantine, disable and
	// config changes when no request of theirs has been.
	passthroughSweep = time.Second
	// maxBacklog bounds the messages kept for a session's next GET stream.
	maxBacklog = 1000
)

// JSON-RPC error codes the passthrough answers with, besides the standard ones.
const (
	codeRequestTimeout = -32001 // as the official SDKs
	codeRefused        = -32000 // the proxy refuses the request (quarantine, session gone)
)

// ptHandler serves /mcp/server/{name} for one server: the endpoint's own streamable HTTP
// transport, relaying raw JSON-RPC between an agent session and that session's upstream
// connection. c is the request's gin context, nil for internal requests (purge).
type ptHandler struct {
	e        *Endpoint
	name     string
	endpoint string
	c        *gin.Context
}

// servePassthrough handles ANY /mcp/server/{name}.
func (e *Endpoint) servePassthrough(c *gin.Context) {
	name := c.Param("name")
	endpoint := "/mcp/server/" + name
	if !e.authorized(c, endpoint) {
		return
	}
	e.serve(c, ptHandler{e: e, name: name, endpoint: endpoint, c: c}, endpoint)
}

// ServeHTTP runs after Endpoint.serve has bounded the body and accounted for the session
// the request names (unknown or closed ids have had their 404).
func (h ptHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		h.post(w, r)
	case http.MethodGet:
		h.get(w, r)
	case http.MethodDelete:
		h.delete(w, r)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		h.fail(w, actors.Errorf(codeMethodNotAllowed, "%s is not allowed on %s", r.Method, h.endpoint))
	}
}

// fail answers with the REST error envelope (the same statuses as the rest of the API).
func (h ptHandler) fail(w http.ResponseWriter, err error) {
	if h.c != nil && h.e.httpSrv != nil {
		h.e.httpSrv.WriteError(h.c, err)
		return
	}
	writeJSON(w, mhttp.StatusOf(err), map[string]any{"error": err.Error(), "code": actors.ErrorCode(err)})
}

// rpcFail answers a request the transport cannot take with an HTTP status and a JSON-RPC
// error, as MCP servers do.
func rpcFail(w http.ResponseWriter, status int, id json.RawMessage, code int, msg string) {
	if !hasID(id) {
		id = json.RawMessage("null")
	}
	writeJSON(w, status, wireMsg{JSONRPC: "2.0", ID: id, Error: &upstream.RPCError{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := encode(v)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"error":"internal error","code":"INTERNAL"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func (h ptHandler) post(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rpcFail(w, http.StatusBadRequest, nil, mcp.PARSE_ERROR, "reading the body: "+err.Error())
		return
	}
	msgs, batch, err := parseMessages(body)
	if err != nil {
		rpcFail(w, http.StatusBadRequest, nil, mcp.PARSE_ERROR, err.Error())
		return
	}
	if v := r.Header.Get(server.HeaderKeyProtocolVersion); v != "" && !slices.Contains(mcp.LegacyProtocolVersions(), v) {
		rpcFail(w, http.StatusBadRequest, nil, mcp.INVALID_REQUEST, fmt.Sprintf("unsupported %s %q", server.HeaderKeyProtocolVersion, v))
		return
	}
	sid := r.Header.Get(server.HeaderKeySessionID)
	for _, m := range msgs {
		if m.Method != string(mcp.MethodInitialize) {
			continue
		}
		switch {
		case batch:
			rpcFail(w, http.StatusBadRequest, m.ID, mcp.INVALID_REQUEST, "initialize must be sent alone")
		case sid != "":
			rpcFail(w, http.StatusBadRequest, m.ID, mcp.INVALID_REQUEST, "initialize starts a new session: send it without "+server.HeaderKeySessionID)
		default:
			h.initialize(w, r, m)
		}
		return
	}
	if sid == "" {
		// An unknown or refused server says so first, as for initialize.
		if _, err := h.e.opts.Backend.PassthroughGen(r.Context(), h.name); err != nil {
			h.fail(w, err)
			return
		}
		code := mcp.INVALID_REQUEST
		if len(msgs) == 1 && msgs[0].Method == string(mcp.MethodServerDiscover) {
			// A modern client's probe: this endpoint speaks the initialize handshake.
			code = mcp.METHOD_NOT_FOUND
		}
		rpcFail(w, http.StatusBadRequest, msgs[0].ID, code, "Bad Request: "+server.HeaderKeySessionID+" header is required; initialize a session first")
		return
	}
	s := h.e.ptSession(sid)
	if s == nil {
		h.fail(w, actors.Errorf(actors.CodeNotFound, "MCP session %q not found or closed; initialize a new one", sid))
		return
	}
	s.post(h, w, r, msgs, batch)
}

func (h ptHandler) get(w http.ResponseWriter, r *http.Request) {
	sid := r.Header.Get(server.HeaderKeySessionID)
	s := h.e.ptSession(sid)
	if s == nil {
		h.fail(w, actors.Errorf(actors.CodeNotFound, "MCP session %q not found or closed; initialize a new one", sid))
		return
	}
	if err := s.check(r.Context()); err != nil {
		h.fail(w, err)
		return
	}
	s.stream(w, r)
}

// delete ends a session: its upstream connection is closed. The tracker's purge of an idle
// session comes here too.
func (h ptHandler) delete(w http.ResponseWriter, r *http.Request) {
	sid := r.Header.Get(server.HeaderKeySessionID)
	if s := h.e.ptSession(sid); s != nil && s.server == h.name {
		s.close("ended by the agent")
		w.WriteHeader(http.StatusOK)
		return
	}
	if h.e.sessions.isLive(sid, h.endpoint) {
		// Known to the tracker but not (or no longer) relayed: just end the record.
		(&idManager{t: h.e.sessions, endpoint: h.endpoint}).Terminate(sid)
		w.WriteHeader(http.StatusOK)
		return
	}
	h.fail(w, actors.Errorf(actors.CodeNotFound, "MCP session %q not found or closed", sid))
}

// initialize starts a session: the server must be reachable, a connection of the session's
// own is dialled, and the agent's initialize goes to it unchanged (capabilities, client
// info), except that a protocol revision newer than this endpoint speaks is lowered to the
// latest session-oriented one. The upstream's answer goes back unchanged.
func (h ptHandler) initialize(w http.ResponseWriter, r *http.Request, m rpcMessage) {
	e := h.e
	params, info, err := initParams(m.Params)
	if err != nil {
		rpcFail(w, http.StatusOK, m.ID, mcp.INVALID_PARAMS, err.Error())
		return
	}
	target, err := e.opts.Backend.PassthroughTarget(r.Context(), h.name)
	if err != nil {
		h.fail(w, err)
		return
	}
	if err := e.ptReserve(h.name); err != nil {
		h.fail(w, err)
		return
	}
	registered := false
	defer func() {
		if !registered {
			e.ptRelease(h.name)
		}
	}()
	s := newPTSession(e, h.name, target)
	ctx, cancel := context.WithTimeout(r.Context(), passthroughInitTimeout)
	defer cancel()
	if iso := target.Config.Isolation; iso != nil && iso.Enabled {
		// Docker names a server's container after it; a session's own must not replace it.
		target.Config.Name = fmt.Sprintf("%s-pt%d", h.name, e.ptSeq.Add(1))
	}
	up, err := e.opts.DialUpstream(ctx, target, upstream.RawHandlers{Notification: s.fromUpstream, Request: s.askAgent})
	if err != nil {
		h.fail(w, actors.Errorf(actors.CodeUpstream, "starting %q for this session failed: %v", h.name, err))
		return
	}
	s.up = up
	res, rpcErr, err := up.Call(ctx, up.NewID(), string(mcp.MethodInitialize), params)
	var negotiated struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	switch {
	case err != nil:
		_ = up.Close()
		h.fail(w, actors.Errorf(actors.CodeUpstream, "initialize of %q failed: %v", h.name, err))
		return
	case rpcErr != nil:
		_ = up.Close()
		writeJSON(w, http.StatusOK, wireMsg{JSONRPC: "2.0", ID: m.ID, Error: rpcErr})
		return
	case json.Unmarshal(res, &negotiated) != nil || !slices.Contains(mcp.LegacyProtocolVersions(), negotiated.ProtocolVersion):
		_ = up.Close()
		rpcFail(w, http.StatusOK, m.ID, mcp.INTERNAL_ERROR,
			fmt.Sprintf("server %q answered protocol version %q, which /mcp/server/ does not speak", h.name, negotiated.ProtocolVersion))
		return
	}
	up.SetProtocolVersion(negotiated.ProtocolVersion)
	ids := &idManager{t: e.sessions, endpoint: h.endpoint, handler: ptHandler{e: e, name: h.name, endpoint: h.endpoint}}
	s.id = ids.Generate()
	e.sessions.setClient(s.id, info)
	if !e.ptAdd(s) {
		s.close("the proxy is shutting down")
		h.fail(w, actors.Errorf(actors.CodeUnavailable, "the proxy is shutting down"))
		return
	}
	registered = true
	w.Header().Set(server.HeaderKeySessionID, s.id)
	writeJSON(w, http.StatusOK, wireMsg{JSONRPC: "2.0", ID: m.ID, Result: res})
}

// initParams returns the params to send upstream and the client's info for the session
// record.
func initParams(raw json.RawMessage) (json.RawMessage, mcp.Implementation, error) {
	var p struct {
		ProtocolVersion string             `json:"protocolVersion"`
		ClientInfo      mcp.Implementation `json:"clientInfo"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, mcp.Implementation{}, fmt.Errorf("initialize params: %w", err)
	}
	if mcp.IsModernProtocol(p.ProtocolVersion) {
		out, err := setField(raw, "protocolVersion", mcp.LATEST_LEGACY_PROTOCOL_VERSION)
		return out, p.ClientInfo, err
	}
	return raw, p.ClientInfo, nil
}

// ptReserve counts a session being started for name, making room by closing the least
// recently active idle session when the server has PassthroughSessions already.
func (e *Endpoint) ptReserve(name string) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return actors.Errorf(actors.CodeUnavailable, "the proxy is shutting down")
	}
	if e.ptCount[name] < e.opts.PassthroughSessions {
		e.ptCount[name]++
		e.ptWG.Add(1)
		e.mu.Unlock()
		return nil
	}
	var victim *ptSession
	var oldest int64
	for _, s := range e.pt {
		if s.server != name {
			continue
		}
		ls := e.sessions.lookup(s.id)
		if ls == nil || ls.inflight.Load() > 0 {
			continue
		}
		if last := ls.last.Load(); victim == nil || last < oldest {
			victim, oldest = s, last
		}
	}
	if victim == nil {
		e.mu.Unlock()
		return actors.Errorf(actors.CodeUnavailable, "server %q has %d passthrough sessions, all busy; try again later", name, e.opts.PassthroughSessions)
	}
	// The victim's slot passes to the new session: forgetting it here means its close
	// releases none.
	delete(e.pt, victim.id)
	e.ptWG.Add(1)
	e.mu.Unlock()
	e.log.Info("closing the least recently used passthrough session to make room", "server", name, "session", victim.id)
	victim.close("evicted: too many sessions for this server")
	return nil
}

// ptRelease gives back a slot reserved for a session that did not start.
func (e *Endpoint) ptRelease(name string) {
	e.mu.Lock()
	e.ptCount[name]--
	e.mu.Unlock()
	e.ptWG.Done()
}

// ptAdd registers a started session; false if the endpoint closed meanwhile. The slot's
// WaitGroup count now belongs to the session's watcher.
func (e *Endpoint) ptAdd(s *ptSession) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.pt[s.id] = s
	go s.watch()
	return true
}

// ptRemove forgets a closed session and frees its slot.
func (e *Endpoint) ptRemove(s *ptSession) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.pt[s.id]; !ok {
		return
	}
	delete(e.pt, s.id)
	e.ptCount[s.server]--
}

func (e *Endpoint) ptSession(id string) *ptSession {
	if id == "" {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pt[id]
}

// PassthroughSessions is the number of agent sessions on /mcp/server/{name} that hold a
// connection of their own to their server.
func (e *Endpoint) PassthroughSessions() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.pt)
}

// sweepPassthrough ends sessions whose server was quarantined, disabled, removed or
// reconfigured, so that an agent that only listens learns it too. One check per server
// per sweep.
func (e *Endpoint) sweepPassthrough() {
	defer close(e.sweepDone)
	t := time.NewTicker(passthroughSweep)
	defer t.Stop()
	for {
		select {
		case <-e.done:
			return
		case <-t.C:
		}
		e.mu.Lock()
		byServer := map[string][]*ptSession{}
		for _, s := range e.pt {
			byServer[s.server] = append(byServer[s.server], s)
		}
		e.mu.Unlock()
		for name, list := range byServer {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			gen, err := e.opts.Backend.PassthroughGen(ctx, name)
			cancel()
			if err != nil && actors.ErrorCode(err) != actors.CodeNotFound && actors.ErrorCode(err) != actors.CodeConflict {
				continue // the registry is busy or stopping: no verdict
			}
			// Close in parallel: each close kills a process group (up to about 1.5 s), and
			// 32 in a row would hold the sweep, and shutdown behind it, for most of a minute.
			var wg sync.WaitGroup
			for _, s := range list {
				reason := ""
				if err != nil {
					reason = err.Error()
				} else if gen != s.gen {
					reason = "the server was reconfigured"
				}
				if reason != "" {
					wg.Go(func() { s.close(reason) })
				}
			}
			wg.Wait()
		}
	}
}

// closePassthrough ends every passthrough session and waits until their upstream
// connections are closed (bounded by ctx).
func (e *Endpoint) closePassthrough(ctx context.Context) {
	e.mu.Lock()
	list := make([]*ptSession, 0, len(e.pt))
	for _, s := range e.pt {
		list = append(list, s)
	}
	e.mu.Unlock()
	for _, s := range list {
		go s.close("the proxy is shutting down")
	}
	done := make(chan struct{})
	go func() {
		e.ptWG.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		e.log.Warn("passthrough sessions did not close in time")
	}
}
