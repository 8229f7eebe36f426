package mcpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/activity"
	"github.com/mcpproxy/mcpproxy/actors/passthrough"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
	mhttp "github.com/mcpproxy/mcpproxy/http"
)

// ptHandler serves /mcp/server/{name} for one server: the streamable HTTP framing in front
// of that server's passthrough session actors (see the package doc). c is the request's
// gin context.
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
	if !e.authorized(c, endpoint) || !e.inScope(c, name) || !e.boundBody(c) {
		return
	}
	h := ptHandler{e: e, name: name, endpoint: endpoint, c: c}
	w, r := c.Writer, c.Request
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

// inScope answers 403 for a server outside the caller's agent token scope (the sessions
// actor refuses to open such a session too); false if it answered.
func (e *Endpoint) inScope(c *gin.Context, name string) bool {
	if caller, _ := actors.CallerFrom(c.Request.Context()); !caller.AllowsServer(name) {
		e.httpSrv.WriteError(c, actors.ErrServerOutOfScope(name))
		return false
	}
	return true
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
	if !upstream.HasID(id) {
		id = json.RawMessage("null")
	}
	writeJSON(w, status, passthrough.Wire{JSONRPC: "2.0", ID: id, Error: &upstream.RPCError{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := passthrough.Encode(v)
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
	msgs, batch, err := passthrough.Parse(body)
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
		if err := h.e.opts.Backend.CheckPassthrough(r.Context(), h.name); err != nil {
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
	var reqs []passthrough.Message
	for _, m := range msgs {
		if m.IsRequest() {
			reqs = append(reqs, m)
		}
	}
	events := acceptsEvents(r)
	out := passthrough.NewStream(events)
	err = h.e.sessions.PostPassthrough(r.Context(), sid, h.endpoint, msgs, out)
	defer h.e.sessions.EndPassthrough(sid, out)
	var revoked *actors.RevokedError
	switch {
	case err != nil && errors.As(err, &revoked) && len(reqs) > 0:
		// The registry closed the session (quarantine, config change): each request is
		// refused with the reason, which the agent's model sees for a tool call.
		answers := make([]passthrough.Wire, len(reqs))
		for i, m := range reqs {
			answers[i] = passthrough.Failure(m, passthrough.CodeRefused, revoked.Error())
			h.recordRevoked(r, m, revoked)
		}
		if batch {
			writeJSON(w, http.StatusOK, answers)
		} else {
			writeJSON(w, http.StatusOK, answers[0])
		}
	case err != nil:
		h.fail(w, err)
	case len(reqs) == 0:
		w.WriteHeader(http.StatusAccepted)
	default:
		relay(w, r, out, events, batch)
	}
}

// relay writes the answers of one POST's requests. A client that accepts event streams
// (every conformant one) gets one: the messages the upstream sends while working on these
// requests, in order, then the responses, each as soon as it is there. A client that
// accepts only JSON gets the response (or, for a batch, the array of them), and what the
// upstream sends meanwhile goes to its GET stream. If the agent goes away, its requests go
// on upstream (a disconnect is not a cancellation) but their answers have nowhere to go.
func relay(w http.ResponseWriter, r *http.Request, out *passthrough.Stream, events, batch bool) {
	if events {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		flush(w)
	}
	var answers []json.RawMessage
	for done := false; !done; {
		select {
		case <-out.Wake():
		case <-r.Context().Done():
			return
		}
		var msgs [][]byte
		msgs, done = out.Take()
		if !events {
			for _, m := range msgs {
				answers = append(answers, m)
			}
			continue
		}
		if writeEvents(w, msgs) != nil {
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

// get serves the session's GET stream: what the upstream sends outside the agent's
// requests. A new GET replaces an older one; what the session kept meanwhile comes first.
func (h ptHandler) get(w http.ResponseWriter, r *http.Request) {
	sid := r.Header.Get(server.HeaderKeySessionID)
	if sid == "" {
		h.fail(w, errGETNeedsSession)
		return
	}
	out := passthrough.NewStream(true)
	err := h.e.sessions.ListenPassthrough(r.Context(), sid, h.endpoint, out)
	defer h.e.sessions.EndPassthrough(sid, out)
	if err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flush(w)
	var beat <-chan time.Time
	if h.e.opts.Heartbeat > 0 {
		t := time.NewTicker(h.e.opts.Heartbeat)
		defer t.Stop()
		beat = t.C
	}
	for {
		select {
		case <-out.Wake():
			msgs, done := out.Take()
			if err := writeEvents(w, msgs); err != nil {
				out.Unread(msgs) // kept for the next GET stream
				return
			}
			if done {
				return
			}
		case <-beat:
			if _, err := w.Write([]byte(": keepalive\n\n")); err != nil {
				return
			}
			flush(w)
		case <-r.Context().Done():
			return
		}
	}
}

// delete ends a session: it answers once the session's upstream connection is closed.
func (h ptHandler) delete(w http.ResponseWriter, r *http.Request) {
	sid := r.Header.Get(server.HeaderKeySessionID)
	if err := h.e.sessions.DeletePassthrough(r.Context(), sid, h.endpoint); err != nil {
		h.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// initialize starts a session: the server must be reachable, a connection of the session's
// own is dialled, and the agent's initialize goes to it unchanged (capabilities, client
// info), except that a protocol revision newer than this endpoint speaks is lowered to the
// latest session-oriented one. The upstream's answer goes back unchanged.
func (h ptHandler) initialize(w http.ResponseWriter, r *http.Request, m passthrough.Message) {
	params, info, err := passthrough.InitParams(m.Params)
	if err != nil {
		rpcFail(w, http.StatusOK, m.ID, mcp.INVALID_PARAMS, err.Error())
		return
	}
	id, res, rpcErr, err := h.e.sessions.OpenPassthrough(r.Context(), h.name, h.endpoint, params, info)
	switch {
	case err != nil:
		h.fail(w, err)
	case rpcErr != nil:
		writeJSON(w, http.StatusOK, passthrough.Wire{JSONRPC: "2.0", ID: m.ID, Error: rpcErr})
	default:
		w.Header().Set(server.HeaderKeySessionID, id)
		writeJSON(w, http.StatusOK, passthrough.Wire{JSONRPC: "2.0", ID: m.ID, Result: res})
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

// recordRevoked records a request refused because the registry closed its session, if it
// is one the activity log keeps (passthrough.Recorded).
func (h ptHandler) recordRevoked(r *http.Request, m passthrough.Message, why error) {
	if h.e.opts.Activity == nil {
		return
	}
	rec, ok := passthrough.NewRecord(m.Method, m.Params)
	if !ok {
		return
	}
	rec.StartedAt, rec.Endpoint, rec.Server = time.Now().UTC(), h.endpoint, h.name
	if c, ok := actors.CallerFrom(r.Context()); ok {
		rec.Credential, rec.SessionID = c.Credential, c.SessionID
		rec.Client = activity.ClientInfo{Name: c.ClientName, Version: c.ClientVersion}
	}
	rec.Outcome, rec.Reason, rec.Error = activity.OutcomeRefused, activity.ReasonRevoked, why.Error()
	h.e.opts.Activity.Record(rec)
}
