// Package activity is the activity log: a record of every tool call agents make through the
// MCP endpoints (/mcp's call_tool, /mcp/all's tools/call, the aggregated prompts/get and
// resources/read of /mcp and /mcp/all, and tools/call, resources/read and prompts/get on
// /mcp/server/{name}), kept in the store with retention, listed and exported over REST,
// and announced on /events as activity.recorded.
//
// # Who owns what
//
// The activity actor (Spawn, named "activity") owns the records: it hands out their ids
// (increasing, never reused: the last one is written with every batch), queues them, and
// feeds a writer goroutine that scrubs and encodes them, writes them in synced batches
// (one fsync for all that arrived while the previous batch was written), applies the
// retention (max_records, max_age) and publishes each written record. Reads run in the
// same goroutine, in order after the writes queued before them, so a listing sees every
// record recorded before it was asked. The endpoints only Send a Record (Client.Record):
// nothing on the call path waits for the store.
//
// # Bounds
//
// Arguments are stored with every secret value replaced (config.Scrubber over the store's
// secret values, and the server's own resolved values where the endpoint has them: strings
// are scrubbed one by one, keys too, so no JSON escaping hides a value), and capped at
// MaxArgumentBytes: a longer encoding is stored as a JSON string holding its first
// MaxArgumentBytes bytes, with truncated set. Results are not stored, only their size. At
// most MaxQueued records wait for the writer; past that a record is dropped and counted
// (Options.Dropped), so a store that stalls cannot make the daemon's memory grow without
// bound.
package activity

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/mcpproxy/mcpproxy/config"
)

// Outcomes of a call.
const (
	// OutcomeOK: the upstream answered with a result.
	OutcomeOK = "ok"
	// OutcomeToolError: the upstream answered with a tool result whose isError is set.
	OutcomeToolError = "tool_error"
	// OutcomeRefused: the proxy did not send the call upstream; Reason says why
	// (quarantined, disabled, not_ready, unknown_server, unknown_tool, invalid, revoked).
	OutcomeRefused = "refused"
	// OutcomeError: the call failed on its way or upstream; Reason holds the code (the
	// proxy's, such as TIMEOUT or UPSTREAM_ERROR, or the upstream's JSON-RPC error code).
	OutcomeError = "error"
)

// Outcomes lists the outcomes in the order the API documents them.
var Outcomes = []string{OutcomeOK, OutcomeToolError, OutcomeRefused, OutcomeError}

// Refusal reasons the endpoints use.
const (
	ReasonQuarantined   = "quarantined"
	ReasonDisabled      = "disabled"
	ReasonNotReady      = "not_ready"
	ReasonUnknownServer = "unknown_server"
	ReasonUnknownTool   = "unknown_tool"
	ReasonInvalid       = "invalid"
	ReasonRevoked       = "revoked"
)

// EventRecorded is the /events event of each written record (its Summary).
const EventRecorded = "activity.recorded"

// MaxArgumentBytes caps the stored arguments of one record.
const MaxArgumentBytes = 8 << 10

// MaxQueued bounds the records waiting for the writer.
const MaxQueued = 100_000

// ClientInfo is the agent's client as its initialize named it.
type ClientInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Record is one call. As JSON it is the API's activity record; Arguments is omitted from
// the activity.recorded event.
type Record struct {
	ID        uint64    `json:"id"`
	StartedAt time.Time `json:"started_at"`
	// DurationMS is the call's duration as the proxy saw it, in milliseconds.
	DurationMS float64 `json:"duration_ms"`
	// Endpoint is /mcp, /mcp/all or /mcp/server/{name}.
	Endpoint string `json:"endpoint"`
	Server   string `json:"server"`
	// Tool is the tool's own name (without the server) for tool calls; Method and Name
	// name any other request (resources/read and its uri, prompts/get and the prompt).
	// Method is tools/call for tool calls too.
	Tool       string          `json:"tool,omitempty"`
	Method     string          `json:"method"`
	Name       string          `json:"name,omitempty"`
	SessionID  string          `json:"session_id"`
	Client     ClientInfo      `json:"client"`
	Credential string          `json:"credential"`
	Arguments  json.RawMessage `json:"arguments,omitempty"`
	Truncated  bool            `json:"truncated"`
	Outcome    string          `json:"outcome"`
	// Reason is why a call was refused, or the code of an error.
	Reason      string `json:"reason,omitempty"`
	ResultBytes int    `json:"result_bytes"`
	// Error is the error's message (tool errors: the text of the result), scrubbed.
	Error string `json:"error,omitempty"`

	// Upstream is how long the upstream took (0 when the call never reached it); the
	// rest of the duration is the proxy's own, which the metrics show.
	Upstream time.Duration `json:"-"`
	// Scrub, when set, holds the server's own resolved values (secrets, ${env:} values,
	// URL credentials), scrubbed from the arguments and error besides the store's secrets.
	Scrub *config.Scrubber `json:"-"`
}

// Duration is the call's duration.
func (r Record) Duration() time.Duration {
	return time.Duration(r.DurationMS * float64(time.Millisecond))
}

// SetDuration sets DurationMS from d, to the microsecond.
func (r *Record) SetDuration(d time.Duration) {
	r.DurationMS = float64(d.Microseconds()) / 1000
}

// IgnoreDeadLetterLogging: a call that ends while the daemon stops has nowhere to go.
func (Record) IgnoreDeadLetterLogging() {}

// Summary is the record without its arguments, as activity.recorded carries it.
func (r Record) Summary() Record {
	r.Arguments = nil
	return r
}

// Filter selects records; zero fields select everything.
type Filter struct {
	Server  string
	Tool    string
	Outcome string
	Session string
	// Since and Until bound started_at (inclusive).
	Since, Until time.Time
}

// Match reports whether r passes f. Tool matches the tool, else the request's name.
func (f Filter) Match(r *Record) bool {
	switch {
	case f.Server != "" && r.Server != f.Server:
	case f.Tool != "" && r.Tool != f.Tool && !(r.Tool == "" && r.Name == f.Tool):
	case f.Outcome != "" && r.Outcome != f.Outcome:
	case f.Session != "" && r.SessionID != f.Session:
	case !f.Since.IsZero() && r.StartedAt.Before(f.Since):
	case !f.Until.IsZero() && r.StartedAt.After(f.Until):
	default:
		return true
	}
	return false
}

// Query is one page of a listing: the records matching Filter with ids below Before (0:
// from the newest), newest first, at most Limit.
type Query struct {
	Filter Filter
	Before uint64
	Limit  int
}

// Page is the answer to a Query. Next is the Before of the next page, 0 on the last one:
// ids only grow, so a page stays the same while new records arrive.
type Page struct {
	Records []Record
	Next    uint64
}

// ErrNotFound is the answer to Get for an id not (or no longer) stored.
var ErrNotFound = errors.New("activity record not found")
