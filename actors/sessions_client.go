package actors

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors/passthrough"
	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
)

// SessionsClient is the typed API of the sessions actor for the MCP endpoints and the
// session routes. Asks are bounded by the caller's context (DefaultAskTimeout when it has
// no deadline); the rest are one-way sends, ordered after what the same goroutine sent
// before.
type SessionsClient struct {
	sys *actor.ActorSystem
	pid *actor.PID
}

// SpawnSessions starts the sessions actor (named "sessions") and returns its client once it
// has started: the records a previous daemon left active are closed by then.
func SpawnSessions(sys *actor.ActorSystem, opts SessionsOptions) (*SessionsClient, error) {
	pid, err := sys.Root.SpawnNamed(NewSessionsProps(opts), "sessions")
	if err != nil {
		return nil, err
	}
	c := &SessionsClient{sys: sys, pid: pid}
	if _, err := c.PassthroughCount(context.Background()); err != nil {
		return nil, err
	}
	return c, nil
}

// PID is the sessions actor, for RegistryOptions.Sessions.
func (c *SessionsClient) PID() *actor.PID { return c.pid }

func (c *SessionsClient) send(msg any) { c.sys.Root.Send(c.pid, msg) }

func (c *SessionsClient) ask(ctx context.Context, msg any, timeout time.Duration) (any, error) {
	return ask(c.sys, c.pid, ctx, msg, timeout, "the session table")
}

// askErr asks and returns the error of a reply.
func (c *SessionsClient) askErr(ctx context.Context, msg any) (any, error) {
	res, err := c.ask(ctx, msg, timeoutOf(ctx))
	if err != nil {
		return nil, err
	}
	if rep, ok := res.(reply); ok {
		return rep.v, rep.err
	}
	return res, nil
}

// NewSession records a new /mcp-style session of endpoint and returns its id (the
// SessionIdManager of mcp-go mints ids here).
func (c *SessionsClient) NewSession(endpoint string) string {
	id := rand.Text()
	c.send(newSession{ID: id, Endpoint: endpoint})
	return id
}

// SetClient records the client's name and version from its initialize request.
func (c *SessionsClient) SetClient(id string, info mcp.Implementation) {
	c.send(setClient{ID: id, Info: info})
}

// BindCredential records the credential (Caller.Credential) an /mcp session was
// initialized with, which its sessions list shows and whose revocation closes it.
func (c *SessionsClient) BindCredential(id, credential string) {
	c.send(bindCredential{ID: id, Credential: credential})
}

// credentialOf is the credential of the caller ctx carries ("" when none).
func credentialOf(ctx context.Context) string {
	caller, _ := CallerFrom(ctx)
	return caller.Credential
}

// CountCall counts one tools/call request of a session.
func (c *SessionsClient) CountCall(id string) { c.send(countCall{ID: id}) }

// Begin accounts for a request of an /mcp-style session on endpoint, so that the session
// is not idle until End. The channel is closed when the session closes (it ends the
// session's streams). CodeNotFound for an unknown or closed session, or one of another
// endpoint; CodeForbidden when ctx's caller is not the credential the session is bound to.
func (c *SessionsClient) Begin(ctx context.Context, id, endpoint string) (<-chan struct{}, error) {
	res, err := c.askErr(ctx, beginRequest{ID: id, Endpoint: endpoint, Credential: credentialOf(ctx)})
	if err != nil {
		return nil, err
	}
	rep, ok := res.(beginReply)
	if !ok {
		return nil, Errorf(CodeInternal, "internal error: unexpected reply %T", res)
	}
	return rep.Done, nil
}

// End ends a request that Begin accounted for.
func (c *SessionsClient) End(id string) { c.send(endRequest{ID: id}) }

// Live reports whether id names an open session of endpoint (either kind).
func (c *SessionsClient) Live(ctx context.Context, id, endpoint string) bool {
	if id == "" {
		return false
	}
	v, err := c.askErr(ctx, sessionLive{ID: id, Endpoint: endpoint})
	live, _ := v.(bool)
	return err == nil && live
}

// Terminate closes an /mcp-style session (its client's DELETE, through mcp-go) and returns
// once its record is written (at most DefaultAskTimeout: mcp-go gives it no context).
func (c *SessionsClient) Terminate(id, endpoint string) {
	_, _ = c.ask(context.Background(), terminate{ID: id, Endpoint: endpoint}, DefaultAskTimeout)
}

// OnIdleClose registers the function the sessions actor calls, in a goroutine of its own,
// for each /mcp-style session of endpoint that it closes because it idled out, so that the
// transport drops its own state of that session.
func (c *SessionsClient) OnIdleClose(endpoint string, purge func(id string)) {
	c.send(registerPurge{Endpoint: endpoint, Purge: purge})
}

// OpenPassthrough starts an agent session on /mcp/server/{server}: the registry must let
// the server be used, a slot must be free (or an idle session is evicted), and the session's
// own connection is dialled with the agent's initialize params init. It returns the new
// session's id and the upstream's answer to initialize, or the JSON-RPC error the upstream
// refused it with (then there is no session), or err (coded: the registry's refusal,
// CodeUpstream for a failed dial, CodeUnavailable when the server's sessions are all busy).
// Giving up (ctx ends first) closes the session that would have opened. The session is
// bound to ctx's caller: its credential, and its scope, which the session applies to the
// server's tools (CodeForbidden for a server outside it).
func (c *SessionsClient) OpenPassthrough(ctx context.Context, server, endpoint string, init json.RawMessage, info mcp.Implementation) (string, json.RawMessage, *upstream.RPCError, error) {
	id := rand.Text()
	if err := ctx.Err(); err != nil {
		return "", nil, nil, Errorf(CodeTimeout, "request cancelled")
	}
	wait := passthrough.DefaultInitTimeout + targetTimeout + 5*time.Second
	if _, ok := ctx.Deadline(); ok {
		wait = timeoutOf(ctx)
	}
	caller, _ := CallerFrom(ctx)
	f := c.sys.Root.RequestFuture(c.pid, openPassthrough{ID: id, Server: server, Endpoint: endpoint, Init: init, Info: info,
		Credential: caller.Credential, Scope: caller.Scope}, wait)
	done := make(chan struct{})
	var res any
	var err error
	go func() {
		res, err = f.Result()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// The sessions actor answers the open at once, so the goroutine above ends now.
		c.send(abandonOpen{ID: id})
		<-done
		return "", nil, nil, Errorf(CodeTimeout, "request cancelled")
	}
	switch {
	case errors.Is(err, actor.ErrTimeout):
		c.send(abandonOpen{ID: id})
		return "", nil, nil, Errorf(CodeTimeout, "the session table did not answer in time")
	case errors.Is(err, actor.ErrDeadLetter):
		return "", nil, nil, Errorf(CodeUnavailable, "the proxy is shutting down")
	case err != nil:
		return "", nil, nil, err
	}
	switch rep := res.(type) {
	case openReply:
		if rep.Err != nil || rep.RPCErr != nil {
			return "", nil, rep.RPCErr, rep.Err
		}
		return id, rep.Result, nil, nil
	case reply:
		return "", nil, nil, rep.err
	default:
		return "", nil, nil, Errorf(CodeInternal, "internal error: unexpected reply %T", res)
	}
}

// PostPassthrough hands the messages of one POST to a passthrough session; answers and
// what the upstream sends for them arrive on out. nil means accepted, and EndPassthrough
// must follow once the handler has stopped writing out. A *RevokedError is the registry's
// reason for having closed the session; CodeNotFound an unknown or closed session;
// CodeForbidden a caller other than the credential the session is bound to.
func (c *SessionsClient) PostPassthrough(ctx context.Context, id, endpoint string, msgs []passthrough.Message, out *passthrough.Stream) error {
	return c.ptAsk(ctx, passthroughPost{ID: id, Endpoint: endpoint, Credential: credentialOf(ctx), Msgs: msgs, Out: out})
}

// ListenPassthrough makes out the GET stream of a passthrough session; errors as for
// PostPassthrough.
func (c *SessionsClient) ListenPassthrough(ctx context.Context, id, endpoint string, out *passthrough.Stream) error {
	return c.ptAsk(ctx, passthroughListen{ID: id, Endpoint: endpoint, Credential: credentialOf(ctx), Out: out})
}

func (c *SessionsClient) ptAsk(ctx context.Context, msg any) error {
	res, err := c.askErr(ctx, msg)
	if err != nil {
		return err
	}
	if _, ok := res.(passthrough.Accepted); !ok {
		return Errorf(CodeInternal, "internal error: unexpected reply %T", res)
	}
	return nil
}

// EndPassthrough says the handler has stopped writing out (after PostPassthrough or
// ListenPassthrough, whatever they returned).
func (c *SessionsClient) EndPassthrough(id string, out *passthrough.Stream) {
	c.send(passthroughEnd{ID: id, Out: out})
}

// DeletePassthrough ends a passthrough session for its agent; it returns once the
// session's connection is closed. CodeNotFound for an unknown or closed session.
func (c *SessionsClient) DeletePassthrough(ctx context.Context, id, endpoint string) error {
	_, err := c.askErr(ctx, deletePassthrough{ID: id, Endpoint: endpoint})
	return err
}

// PassthroughCount is the number of open passthrough sessions.
func (c *SessionsClient) PassthroughCount(ctx context.Context) (int, error) {
	v, err := c.askErr(ctx, countPassthrough{})
	n, _ := v.(int)
	return n, err
}

// Sessions lists every recorded session, newest first: the open ones as they are now, and
// the closed ones from the store.
func (c *SessionsClient) Sessions(ctx context.Context) ([]store.Session, error) {
	v, err := c.askErr(ctx, listSessions{})
	if err != nil {
		return nil, err
	}
	list, _ := v.([]store.Session)
	return list, nil
}

// Session returns one session; CodeNotFound if there is none with that id.
func (c *SessionsClient) Session(ctx context.Context, id string) (store.Session, error) {
	v, err := c.askErr(ctx, getSession{ID: id})
	if err != nil {
		return store.Session{}, err
	}
	s, _ := v.(store.Session)
	return s, nil
}

// CloseAll ends every session and refuses new ones (shutdown); it returns once every
// passthrough connection is closed and every record is written.
func (c *SessionsClient) CloseAll(ctx context.Context) error {
	_, err := c.askErr(ctx, closeAllSessions{})
	return err
}

// AwaitServerGone returns once no passthrough session of server has a connection left.
// Call it after the registry removed the server (which revokes its sessions first).
func (c *SessionsClient) AwaitServerGone(ctx context.Context, server string) error {
	_, err := c.askErr(ctx, awaitServerGone{Server: server})
	return err
}
