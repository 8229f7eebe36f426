package actors

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/config"
)

// This file is what an agent token is: its API shapes, its scope (an actors.Scope) and the
// checks of a new one. The tokens actor (tokens_actor.go) owns the table.

// AgentTokenPrefix starts every agent token, so that a credential is told from the API key
// (hex) at a glance, and secret scanners can find leaked ones.
const AgentTokenPrefix = "mcpa_"

// tokenBytes is the randomness of a token: 256 bits, so that its plain SHA-256 is all the
// store needs (nothing can be guessed from it).
const tokenBytes = 32

// TokenNamePattern is what a token's name must match: it appears in URLs, session records
// and logs.
const TokenNamePattern = `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`

var tokenNameRE = config.MustNameMatcher(TokenNamePattern)

// IsAgentToken reports whether a presented credential has the form of an agent token (not
// whether it is valid).
func IsAgentToken(s string) bool { return strings.HasPrefix(s, AgentTokenPrefix) }

// TokenSpec is what POST /api/v1/tokens asks for.
type TokenSpec struct {
	Name string `json:"name"`
	// Servers are the servers the token may use: names or globs ("*" for all). A server
	// that does not exist yet may be named; it is allowed once it is added.
	Servers []string `json:"servers"`
	// Tools, if any, narrow the tools of the allowed servers: globs over "server:tool",
	// such as "github:get_*". None allows every tool of the allowed servers.
	Tools []string `json:"tools,omitempty"`
	// ReadOnly allows only tools whose readOnlyHint is true.
	ReadOnly  bool       `json:"read_only"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// AgentToken is an agent token as the API shows it: its scope and times, never the token.
type AgentToken struct {
	Name       string     `json:"name"`
	Servers    []string   `json:"servers"`
	Tools      []string   `json:"tools"`
	ReadOnly   bool       `json:"read_only"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	// Expired says expires_at has passed: the token opens nothing, and stays listed until
	// it is revoked, so that the user sees why an agent stopped working.
	Expired bool `json:"expired"`
}

// CreatedToken is the answer of POST /api/v1/tokens: the token's metadata and the token
// itself, shown this once.
type CreatedToken struct {
	AgentToken
	Token string `json:"token"`
}

// newTokenSecret returns a fresh token and its SHA-256.
func newTokenSecret() (string, []byte) {
	b := make([]byte, tokenBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	tok := AgentTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return tok, tokenDigest(tok)
}

func tokenDigest(tok string) []byte {
	d := sha256.Sum256([]byte(tok))
	return d[:]
}

// Check validates a spec at now: a clear 400 naming each bad field (in Fields) and nothing
// changed.
func (s TokenSpec) Check(now time.Time) error {
	var errs []config.FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, config.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch {
	case !tokenNameRE.MatchString(s.Name):
		bad("name", "name %q must match %s", s.Name, TokenNamePattern)
	case s.Name == CredentialAdmin || s.Name == CredentialNone:
		bad("name", "name %q is reserved (sessions name the API key %q and no credential %q)", s.Name, CredentialAdmin, CredentialNone)
	}
	if len(s.Servers) == 0 {
		bad("servers", `servers must name at least one server, or ["*"] for all`)
	}
	for i, p := range s.Servers {
		if err := checkGlob(p, false); err != "" {
			bad(fmt.Sprintf("servers[%d]", i), "server pattern %q %s", p, err)
		}
	}
	for i, p := range s.Tools {
		if err := checkGlob(p, true); err != "" {
			bad(fmt.Sprintf("tools[%d]", i), "tool pattern %q %s", p, err)
			continue
		}
		server, _, _ := strings.Cut(p, ":")
		if !strings.ContainsAny(server, "*?") && !(&tokenScope{servers: s.Servers}).AllowsServer(server) {
			bad(fmt.Sprintf("tools[%d]", i), "tool pattern %q names server %q, which servers does not allow", p, server)
		}
	}
	if s.ExpiresAt != nil && !s.ExpiresAt.After(now) {
		bad("expires_at", "expires_at %s is not in the future", s.ExpiresAt.Format(time.RFC3339))
	}
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Field + ": " + e.Message
	}
	return &Error{Code: CodeInvalidArgument, Message: "invalid token: " + strings.Join(msgs, "; "), Fields: errs}
}

// checkGlob says what is wrong with a pattern, "" if nothing. A tool pattern is
// "server:tool" (each part a glob).
func checkGlob(p string, tool bool) string {
	switch {
	case strings.TrimSpace(p) == "":
		return "is empty"
	case strings.ContainsAny(p, " \t\r\n"):
		return "must not contain white space"
	case len(p) > 256:
		return "is longer than 256 characters"
	}
	if tool {
		server, name, ok := strings.Cut(p, ":")
		if !ok || server == "" || name == "" {
			return `must be "server:tool" (globs allowed, such as "github:get_*")`
		}
	} else if strings.Contains(p, ":") {
		return `must name servers only; narrow tools with "tools": ["server:tool"]`
	}
	return ""
}

// globMatch reports whether s matches pattern, where '*' matches any run of characters
// (including none) and '?' exactly one; everything else stands for itself. Unlike
// path.Match, '/' is not special: tool names may contain it.
func globMatch(pattern, s string) bool {
	// Iterative matching with one backtrack point: linear in practice, never exponential.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// tokenScope is an agent token's Scope. It is never changed once made (a token's scope is
// fixed at its creation), so the registry and the session actors may read it from their
// own goroutines.
type tokenScope struct {
	servers, tools []string
	readOnly       bool
}

var _ Scope = (*tokenScope)(nil)

func (s *tokenScope) AllowsServer(server string) bool {
	for _, p := range s.servers {
		if globMatch(p, server) {
			return true
		}
	}
	return false
}

func (s *tokenScope) AllowsTool(server, tool string, readOnly bool) bool {
	if s.readOnly && !readOnly || !s.AllowsServer(server) {
		return false
	}
	if len(s.tools) == 0 {
		return true
	}
	full := server + ":" + tool
	for _, p := range s.tools {
		if globMatch(p, full) {
			return true
		}
	}
	return false
}

// scopeOf is the Scope of a stored token.
func scopeOf(t store.Token) *tokenScope {
	return &tokenScope{servers: t.Servers, tools: t.Tools, readOnly: t.ReadOnly}
}

// toolReadOnly reads readOnlyHint from a tool's annotations (false when absent, as MCP
// says a client must assume).
func toolReadOnly(annotations json.RawMessage) bool {
	if len(annotations) == 0 {
		return false
	}
	var a struct {
		ReadOnly *bool `json:"readOnlyHint"`
	}
	return json.Unmarshal(annotations, &a) == nil && a.ReadOnly != nil && *a.ReadOnly
}

// ReadOnly reports the tool's readOnlyHint.
func (t Tool) ReadOnly() bool { return toolReadOnly(t.Annotations) }

// viewToken is the API view of a stored token at now.
func viewToken(t store.Token, now time.Time) AgentToken {
	v := AgentToken{Name: t.Name, Servers: t.Servers, Tools: t.Tools, ReadOnly: t.ReadOnly,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsed, Expired: expired(t, now)}
	if v.Tools == nil {
		v.Tools = []string{}
	}
	return v
}

func expired(t store.Token, now time.Time) bool {
	return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)
}

// scopeRefusal says why scope does not allow calling server's tool (CodeForbidden), nil
// if it does; the message says what the token lacks, for the agent's model to read.
func scopeRefusal(scope Scope, server, tool string, readOnly bool) error {
	switch {
	case !scope.AllowsServer(server):
		return ErrServerOutOfScope(server)
	case scope.AllowsTool(server, tool, readOnly):
		return nil
	case !readOnly && scope.AllowsTool(server, tool, true):
		return Errorf(CodeForbidden, "the agent token does not allow tool %q: it is read-only, and the tool is not marked readOnlyHint", server+":"+tool)
	}
	return Errorf(CodeForbidden, "the agent token does not allow tool %q", server+":"+tool)
}
