package actors

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/actors/store"
)

// TokenStore is the part of the store the tokens actor uses. *store.Store implements it.
type TokenStore interface {
	PutTokens(tokens ...store.Token) error
	DeleteToken(name string) error
	ListTokens() ([]store.Token, error)
}

var _ TokenStore = (*store.Store)(nil)

// DefaultTokenFlush is how often the last-used times of agent tokens are written: a token
// is checked on every MCP request, and a synced write per request would cost more than
// the request. A crash loses at most this much of last_used_at, nothing else.
const DefaultTokenFlush = 30 * time.Second

// TokensOptions configure the tokens actor. The zero value keeps tokens in memory only and
// closes no sessions.
type TokensOptions struct {
	Store TokenStore
	// Sessions is the sessions actor, which closes the MCP sessions of a token that is
	// revoked or expires.
	Sessions *actor.PID
	Logger   *slog.Logger
	// FlushEvery default DefaultTokenFlush.
	FlushEvery time.Duration
}

// Messages of the tokens actor (see TokensClient).
type (
	// createToken carries the SHA-256 of a token the client made: the token itself never
	// travels in a message, which protoactor would print if it were undelivered.
	createToken struct {
		Spec   TokenSpec
		Digest []byte
	}
	listTokens  struct{}
	revokeToken struct{ Name string }
	// verifyToken carries the SHA-256 of the presented token, never the token, so that no
	// log of an undelivered message can show it.
	verifyToken struct {
		Digest []byte
		Use    bool // count it as used (the MCP endpoints), not a refused REST request
	}
	verified struct {
		Name  string
		Scope Scope
	}
	tokensExpiryDue struct{}
	tokensFlushDue  struct{}
)

func (tokensExpiryDue) IgnoreDeadLetterLogging() {}
func (tokensFlushDue) IgnoreDeadLetterLogging()  {}

// tokenRec is one token in the table.
type tokenRec struct {
	store.Token
	scope *tokenScope
	ended bool // expired, and its sessions were closed
}

// tokens is the actor that owns the agent tokens. See doc.go.
type tokens struct {
	opts   TokensOptions
	log    *slog.Logger
	sys    *actor.ActorSystem
	self   *actor.PID
	byName map[string]*tokenRec
	dirty  map[string]bool // last_used_at changed since the last write
	expiry *time.Timer
	flush  *time.Timer
}

// NewTokensProps returns the props of the tokens actor.
func NewTokensProps(opts TokensOptions) *actor.Props {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = DefaultTokenFlush
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &tokens{opts: opts, log: opts.Logger}
	})
}

// Receive dispatches; a bug is caught, logged and answered as an internal error, so that a
// restart does not drop the table.
func (a *tokens) Receive(ctx actor.Context) {
	defer survivePanic(ctx, a.log, "tokens")
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.start(ctx)
	case *actor.Stopping:
		a.stopTimers()
		a.writeLastUsed()
	case createToken:
		a.create(ctx, m)
	case listTokens:
		a.list(ctx)
	case revokeToken:
		a.revoke(ctx, m.Name)
	case verifyToken:
		a.verify(ctx, m)
	case tokensExpiryDue:
		a.expire(ctx)
	case tokensFlushDue:
		a.flush = nil
		a.writeLastUsed()
	}
}

// start loads the table. The store is read once, synchronously, before any request.
func (a *tokens) start(ctx actor.Context) {
	a.sys, a.self = ctx.ActorSystem(), ctx.Self()
	a.byName, a.dirty = map[string]*tokenRec{}, map[string]bool{}
	if a.opts.Store != nil {
		list, err := a.opts.Store.ListTokens()
		if err != nil {
			a.log.Error("loading agent tokens failed; none is accepted", "err", err)
		}
		for _, t := range list {
			a.byName[t.Name] = &tokenRec{Token: t, scope: scopeOf(t), ended: expired(t, time.Now())}
		}
	}
	a.armExpiry(time.Now())
}

func (a *tokens) stopTimers() {
	for _, t := range []*time.Timer{a.expiry, a.flush} {
		if t != nil {
			t.Stop()
		}
	}
	a.expiry, a.flush = nil, nil
}

// create records a token: checked, unique, on disk before the answer (its metadata; the
// client adds the token, which it made, and which is shown only then).
func (a *tokens) create(ctx actor.Context, m createToken) {
	spec := m.Spec
	now := time.Now().UTC()
	if err := spec.Check(now); err != nil {
		ctx.Respond(reply{err: err})
		return
	}
	if a.byName[spec.Name] != nil {
		ctx.Respond(reply{err: Errorf(CodeConflict, "an agent token named %q exists; revoke it first or choose another name", spec.Name)})
		return
	}
	if len(m.Digest) != len(tokenDigest("")) {
		ctx.Respond(reply{err: Errorf(CodeInternal, "internal error: no token digest")})
		return
	}
	t := store.Token{Name: spec.Name, Digest: m.Digest, Servers: slices.Clone(spec.Servers), Tools: slices.Clone(spec.Tools),
		ReadOnly: spec.ReadOnly, CreatedAt: now.Truncate(time.Second)}
	if spec.ExpiresAt != nil {
		at := spec.ExpiresAt.UTC()
		t.ExpiresAt = &at
	}
	if a.opts.Store != nil {
		if err := a.opts.Store.PutTokens(t); err != nil {
			ctx.Respond(reply{err: err})
			return
		}
	}
	a.byName[t.Name] = &tokenRec{Token: t, scope: scopeOf(t)}
	a.armExpiry(time.Now())
	a.log.Info("agent token created", "token", t.Name, "servers", t.Servers, "tools", t.Tools, "read_only", t.ReadOnly)
	ctx.Respond(reply{v: viewToken(t, now)})
}

func (a *tokens) list(ctx actor.Context) {
	now := time.Now()
	out := make([]AgentToken, 0, len(a.byName))
	for _, t := range a.byName {
		out = append(out, viewToken(t.Token, now))
	}
	slices.SortFunc(out, func(x, y AgentToken) int { return strings.Compare(x.Name, y.Name) })
	ctx.Respond(reply{v: out})
}

// revoke deletes a token (synced) and has the sessions actor close its sessions, which
// answers the requester once they are closed.
func (a *tokens) revoke(ctx actor.Context, name string) {
	t := a.byName[name]
	if t == nil {
		ctx.Respond(reply{err: Errorf(CodeNotFound, "agent token %q not found", name)})
		return
	}
	if a.opts.Store != nil {
		if err := a.opts.Store.DeleteToken(name); err != nil && !errors.Is(err, store.ErrNotFound) {
			ctx.Respond(reply{err: err})
			return
		}
	}
	delete(a.byName, name)
	delete(a.dirty, name)
	a.armExpiry(time.Now())
	a.log.Info("agent token revoked", "token", name)
	if a.opts.Sessions == nil {
		ctx.Respond(reply{})
		return
	}
	ctx.RequestWithCustomSender(a.opts.Sessions, closeCredential{Name: name, Reason: "the agent token was revoked"}, ctx.Sender())
}

// verify finds the token whose SHA-256 is m.Digest. Every digest in the table is compared,
// each in constant time, whatever matched: how long it takes says nothing about the
// presented token (and tokens are few).
func (a *tokens) verify(ctx actor.Context, m verifyToken) {
	var found *tokenRec
	for _, t := range a.byName {
		if subtle.ConstantTimeCompare(t.Digest, m.Digest) == 1 {
			found = t
		}
	}
	now := time.Now()
	if found == nil || found.ended || expired(found.Token, now) {
		ctx.Respond(reply{err: Errorf(CodeNotFound, "unknown, revoked or expired agent token")})
		return
	}
	if m.Use {
		at := now.UTC().Truncate(time.Second)
		found.LastUsed = &at
		a.dirty[found.Name] = true
		if a.flush == nil {
			sys, self := a.sys, a.self
			a.flush = time.AfterFunc(a.opts.FlushEvery, func() { sys.Root.Send(self, tokensFlushDue{}) })
		}
	}
	ctx.Respond(reply{v: verified{Name: found.Name, Scope: found.scope}})
}

// writeLastUsed writes the tokens whose last use changed, in one synced batch.
func (a *tokens) writeLastUsed() {
	if len(a.dirty) == 0 || a.opts.Store == nil {
		clear(a.dirty)
		return
	}
	var batch []store.Token
	for name := range a.dirty {
		if t := a.byName[name]; t != nil {
			batch = append(batch, t.Token)
		}
	}
	clear(a.dirty)
	if err := a.opts.Store.PutTokens(batch...); err != nil {
		a.log.Warn("saving the last use of agent tokens failed", "err", err)
	}
}

// armExpiry sets the timer for the next token to expire (none if no token will).
func (a *tokens) armExpiry(now time.Time) {
	if a.expiry != nil {
		a.expiry.Stop()
		a.expiry = nil
	}
	var next time.Time
	for _, t := range a.byName {
		if t.ended || t.ExpiresAt == nil {
			continue
		}
		if next.IsZero() || t.ExpiresAt.Before(next) {
			next = *t.ExpiresAt
		}
	}
	if next.IsZero() {
		return
	}
	sys, self := a.sys, a.self
	a.expiry = time.AfterFunc(max(next.Sub(now), 0), func() { sys.Root.Send(self, tokensExpiryDue{}) })
}

// expire ends the tokens whose time has come: they open nothing from now on, and their
// sessions are closed at once. They stay listed (expired) until revoked.
func (a *tokens) expire(ctx actor.Context) {
	now := time.Now()
	for _, t := range a.byName {
		if t.ended || !expired(t.Token, now) {
			continue
		}
		t.ended = true
		a.log.Info("agent token expired", "token", t.Name)
		if a.opts.Sessions != nil {
			ctx.Send(a.opts.Sessions, closeCredential{Name: t.Name, Reason: "the agent token expired"})
		}
	}
	a.armExpiry(now)
}

// TokensClient is the typed API of the tokens actor. Asks are bounded by the caller's
// context (DefaultAskTimeout when it has none).
type TokensClient struct {
	sys *actor.ActorSystem
	pid *actor.PID
}

// SpawnTokens starts the tokens actor (named "tokens") and returns its client once it has
// loaded the table.
func SpawnTokens(sys *actor.ActorSystem, opts TokensOptions) (*TokensClient, error) {
	pid, err := sys.Root.SpawnNamed(NewTokensProps(opts), "tokens")
	if err != nil {
		return nil, err
	}
	c := &TokensClient{sys: sys, pid: pid}
	if _, err := c.List(context.Background()); err != nil {
		return nil, err
	}
	return c, nil
}

// PID is the tokens actor.
func (c *TokensClient) PID() *actor.PID { return c.pid }

func (c *TokensClient) ask(ctx context.Context, msg any) (any, error) {
	res, err := ask(c.sys, c.pid, ctx, msg, timeoutOf(ctx), "the token table")
	if err != nil {
		return nil, err
	}
	rep, ok := res.(reply)
	if !ok {
		return nil, Errorf(CodeInternal, "internal error: unexpected reply %T", res)
	}
	return rep.v, rep.err
}

// Create makes a token; the answer carries the token, which is never shown again.
// CodeConflict for a name in use, CodeInvalidArgument (with Fields) for a bad spec.
func (c *TokensClient) Create(ctx context.Context, spec TokenSpec) (CreatedToken, error) {
	secret, digest := newTokenSecret()
	v, err := c.ask(ctx, createToken{Spec: spec, Digest: digest})
	if err != nil {
		return CreatedToken{}, err
	}
	meta, _ := v.(AgentToken)
	return CreatedToken{AgentToken: meta, Token: secret}, nil
}

// List returns every token's metadata, by name.
func (c *TokensClient) List(ctx context.Context) ([]AgentToken, error) {
	v, err := c.ask(ctx, listTokens{})
	list, _ := v.([]AgentToken)
	return list, err
}

// Revoke deletes a token and returns once its open MCP sessions are closed. CodeNotFound
// for an unknown name.
func (c *TokensClient) Revoke(ctx context.Context, name string) error {
	_, err := c.ask(ctx, revokeToken{Name: name})
	return err
}

// Verify returns the caller an agent token stands for (its name as Credential, its scope),
// or false when the token is unknown, revoked or expired. use counts it as the token's
// last use.
func (c *TokensClient) Verify(ctx context.Context, token string, use bool) (Caller, bool) {
	if !IsAgentToken(token) {
		return Caller{}, false
	}
	v, err := c.ask(ctx, verifyToken{Digest: tokenDigest(token), Use: use})
	got, ok := v.(verified)
	if err != nil || !ok {
		return Caller{}, false
	}
	return Caller{Credential: got.Name, Scope: got.Scope}, true
}
