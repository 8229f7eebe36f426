package actors

import "context"

// Caller is who makes a request through the MCP endpoints: the credential it presented, its
// MCP session and the agent's client. The http layer puts it in the request's context
// (WithCaller) once the request is authenticated; the call path reads it (CallerFrom) for
// the checks that depend on who asks (agent token scopes) and for what it records
// (activity records, session records).
type Caller struct {
	// Credential names the credential used: CredentialAdmin for the API key,
	// CredentialNone when the endpoint needs none (require_mcp_auth off, the Unix socket),
	// else an agent token's name.
	Credential string
	// Scope limits what the caller may see and call; nil allows everything.
	Scope Scope
	// SessionID is the MCP session the request belongs to, "" before initialize.
	SessionID string
	// ClientName and ClientVersion are the agent's clientInfo from its initialize.
	ClientName, ClientVersion string
}

// Credential names for the callers that do not use an agent token.
const (
	CredentialAdmin = "admin"
	CredentialNone  = "none"
)

// Scope is what a credential allows. The agent tokens implement it; a nil Scope allows
// everything.
type Scope interface {
	// AllowsServer reports whether the caller may see and use the server at all.
	AllowsServer(server string) bool
	// AllowsTool reports whether the caller may see and call server's tool; readOnly is the
	// tool's readOnlyHint.
	AllowsTool(server, tool string, readOnly bool) bool
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller ctx carries, and false when it carries none (a call made
// by the daemon itself or over REST).
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// AllowsServer reports whether c may use server (true without a scope).
func (c Caller) AllowsServer(server string) bool {
	return c.Scope == nil || c.Scope.AllowsServer(server)
}

// AllowsTool reports whether c may see and call server's tool (true without a scope).
func (c Caller) AllowsTool(server, tool string, readOnly bool) bool {
	return c.Scope == nil || c.Scope.AllowsTool(server, tool, readOnly)
}
