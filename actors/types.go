package actors

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mcpproxy/mcpproxy/config"
)

// State is where a server is in its life cycle (see ARCHITECTURE.md "Server life cycle").
type State string

// The states of a server. Quarantine is a flag, not a state.
const (
	StateDisabled   State = "disabled"
	StateConnecting State = "connecting"
	StateReady      State = "ready"
	StateError      State = "error"
	StateBackoff    State = "backoff"
	StateStopping   State = "stopping"
	// StateNeedsAuth is a remote server that answered 401 (or 403 insufficient_scope) and
	// has no usable OAuth token: it waits for a login (POST .../login), without backoff.
	StateNeedsAuth State = "needs_auth"
)

// AuthStatus is a remote server's OAuth state as the API shows it (never a token).
// Required: the server asked for a login, or has an oauth config or stored tokens.
type AuthStatus struct {
	Required  bool       `json:"required"`
	LoggedIn  bool       `json:"logged_in"`
	ExpiresAt *time.Time `json:"expires_at"`
	Scopes    []string   `json:"scopes"`
	// Grant is how the server gets its tokens, from its config (oauth.grant):
	// "authorization_code" (a user logs in; the default) or "client_credentials" or
	// "id_jag" (the daemon logs in by itself, so no login is offered). Set by the registry's
	// view.
	Grant string `json:"grant"`
}

func (a *AuthStatus) equal(b *AuthStatus) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Required == b.Required && a.LoggedIn == b.LoggedIn && slices.Equal(a.Scopes, b.Scopes) &&
		(a.ExpiresAt == nil) == (b.ExpiresAt == nil) && (a.ExpiresAt == nil || a.ExpiresAt.Equal(*b.ExpiresAt))
}

// Server is the public view of one upstream, as the API shows it. It never carries env
// values, header values or secrets: URL has its credentials redacted (config.RedactURL), Args
// are as written (references unexpanded), and LastError is scrubbed of the server's
// resolved secrets and URL credentials (config.Scrubber).
type Server struct {
	Name        string     `json:"name"`
	Protocol    string     `json:"protocol"`
	Enabled     bool       `json:"enabled"`
	Connected   bool       `json:"connected"`
	Quarantined bool       `json:"quarantined"`
	ToolsCount  int        `json:"tools_count"`
	State       State      `json:"state"`
	LastError   string     `json:"last_error"`
	RetryCount  int        `json:"retry_count"`
	ConnectedAt *time.Time `json:"connected_at"`
	URL         string     `json:"url,omitempty"`
	Command     string     `json:"command,omitempty"`
	Args        []string   `json:"args,omitempty"`
	Isolated    bool       `json:"isolated"`
	// ProtocolVersion is the MCP revision the server and the daemon agreed on, while it is
	// connected (a server entry's protocol_version pins it).
	ProtocolVersion string `json:"protocol_version,omitempty"`
	// ToolsAwaitingReview counts the server's tools held back because they changed since
	// their approval or are new (0 while quarantined).
	ToolsAwaitingReview int `json:"tools_awaiting_review"`
	// Auth is set for http and sse servers: whether they need an OAuth login and whether
	// they have one.
	Auth *AuthStatus `json:"auth,omitempty"`
	// ErrorSince is when the server last entered error/backoff; diagnostics show it.
	ErrorSince *time.Time `json:"-"`
	// PID is the stdio child's process id (0 for remotes or when not running); for tests
	// and diagnostics, not part of the API object.
	PID int `json:"-"`
}

// ServerList is the server list with the registry's version number: the same number means
// the same list, so a reader may reuse what it built from it (the HTTP layer's JSON).
type ServerList struct {
	Version uint64
	Servers []Server
}

// Tool is one upstream tool as agents and the API see it.
type Tool struct {
	Name        string          `json:"name"` // "<server>:<tool>"
	Server      string          `json:"server"`
	Title       string          `json:"title,omitempty"` // the upstream's human title, if any
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
	Annotations json.RawMessage `json:"annotations,omitempty"`
	// Raw is the upstream's own tool name, without the server prefix.
	Raw string `json:"-"`
	// Def is the canonical definition (upstream.ToolDefinition) and Hash its SHA-256: what
	// tool-level trust pins.
	Def  json.RawMessage `json:"-"`
	Hash string          `json:"-"`
	// Instructions are the server's instructions from its initialize answer: the same
	// string (not a copy) on each of its tools, indexed for search and not shown with the
	// tool.
	Instructions string `json:"-"`
	// Sum is the SHA-256 of the tool as the upstream sent it (upstream.Tool.Sum): the next
	// listing of the same connection's server reuses this Tool for the same bytes.
	Sum [32]byte `json:"-"`
}

// ToolHit is a search result: a Tool and its score.
type ToolHit struct {
	Tool
	Score float64 `json:"score"`
	// Matched names the fields of the tool the query matched (search.FieldNames: name,
	// title, server, instructions, description, parameters, ...), so that an agent or a
	// person can see why it was found. Empty when listing without a query.
	Matched []string `json:"matched,omitempty"`
}

// Status is the summary GET /api/v1/status shows.
type Status struct {
	Servers StatusServers `json:"servers"`
	Tools   StatusTools   `json:"tools"`
}

// StatusServers counts servers by condition.
type StatusServers struct {
	Total       int `json:"total"`
	Connected   int `json:"connected"`
	Quarantined int `json:"quarantined"`
	Disabled    int `json:"disabled"`
	Errored     int `json:"errored"`
}

// StatusTools counts the tools agents can reach now, and those held back for review
// (changed or new tools of approved servers).
type StatusTools struct {
	Total          int `json:"total"`
	AwaitingReview int `json:"awaiting_review"`
}

// BulkResult is the answer to a bulk operation.
type BulkResult struct {
	Total      int               `json:"total"`
	Successful int               `json:"successful"`
	Failed     int               `json:"failed"`
	Skipped    int               `json:"skipped"`
	Errors     map[string]string `json:"errors"`
	// Operation is the id of the operation's progress (GET /api/v1/operations/{id}).
	Operation string `json:"operation"`
}

// Selection is the subset of servers a bulk operation acts on. Every selector given
// narrows it: Servers (names, each must exist), Match (a path.Match glob over names) and
// State (the server's state now); the zero Selection is every server.
type Selection struct {
	Servers []string `json:"servers,omitempty"`
	Match   string   `json:"match,omitempty"`
	State   []string `json:"state,omitempty"`
}

// selectableStates are the states a Selection may name.
var selectableStates = []State{StateDisabled, StateConnecting, StateReady, StateError, StateBackoff, StateStopping, StateNeedsAuth}

// ServerTools is a server's own tool list, listed for review even while quarantined, with
// each tool's approval (see trust.go). AwaitingReview counts the tools held back (0 while
// quarantined: then the whole server awaits review).
type ServerTools struct {
	Server         string       `json:"server"`
	Quarantined    bool         `json:"quarantined"`
	AwaitingReview int          `json:"awaiting_review"`
	Tools          []ServerTool `json:"tools"`
}

// ApplyResult is the answer to a config apply.
type ApplyResult struct {
	Applied         bool     `json:"applied"`
	Added           []string `json:"added"`
	Removed         []string `json:"removed"`
	Changed         []string `json:"changed"`
	Unchanged       []string `json:"unchanged"`
	RestartRequired []string `json:"restart_required"`
}

// Code classifies an error; http maps each code to one status in one table.
type Code string

// The error codes of API.md.
const (
	CodeInvalidArgument Code = "INVALID_ARGUMENT"
	CodeNotFound        Code = "NOT_FOUND"
	CodeConflict        Code = "CONFLICT"
	// CodeForbidden: the caller is known but its credential does not allow this (an agent
	// token outside its scope, or on the REST API).
	CodeForbidden   Code = "FORBIDDEN"
	CodeUnavailable Code = "UNAVAILABLE"
	CodeTimeout     Code = "TIMEOUT"
	CodeUpstream    Code = "UPSTREAM_ERROR"
	CodeInternal    Code = "INTERNAL"
)

// Error is an error with a code, decided where the failure is understood.
type Error struct {
	Code    Code
	Message string
	// Fields lists config validation problems, when the error is about a config.
	Fields []config.FieldError
	// Refusal is set when the proxy refused a call before anything reached the upstream,
	// and names why in a word (activity.ReasonQuarantined, ReasonDisabled, ...), for the
	// activity log's outcome "refused".
	Refusal string
}

// RefusalOf returns the refusal reason of err, "" when it is no refusal.
func RefusalOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Refusal
	}
	return ""
}

// refused marks e as a refusal for reason.
func (e *Error) refused(reason string) *Error {
	e.Refusal = reason
	return e
}

func (e *Error) Error() string { return e.Message }

// Errorf makes an *Error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, CodeInternal when it has none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
