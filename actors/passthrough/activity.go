package passthrough

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors/activity"
)

// Recorded reports whether the activity log keeps requests of method: the calls that do
// something on the agent's behalf (tools/call, resources/read, prompts/get), not the
// listings and the protocol's housekeeping.
func Recorded(method string) bool {
	switch mcp.MCPMethod(method) {
	case mcp.MethodToolsCall, mcp.MethodResourcesRead, mcp.MethodPromptsGet:
		return true
	}
	return false
}

// NewRecord starts the activity record of a request (false for one that is not
// Recorded): the method, what it names (the tool, the resource's uri, the prompt) and its
// arguments, raw (the activity log's writer scrubs and caps them).
func NewRecord(method string, params json.RawMessage) (activity.Record, bool) {
	if !Recorded(method) {
		return activity.Record{}, false
	}
	var p struct {
		Name      string          `json:"name"`
		URI       string          `json:"uri"`
		Arguments json.RawMessage `json:"arguments"`
	}
	_ = json.Unmarshal(params, &p)
	rec := activity.Record{Method: method, Name: p.Name}
	switch mcp.MCPMethod(method) {
	case mcp.MethodToolsCall:
		rec.Tool, rec.Name = p.Name, ""
	case mcp.MethodResourcesRead:
		rec.Name = p.URI
	}
	if len(p.Arguments) > 0 && string(p.Arguments) != "null" {
		rec.Arguments = p.Arguments
	}
	return rec, true
}

// clientInfo reads the agent's clientInfo from its initialize params.
func clientInfo(init json.RawMessage) activity.ClientInfo {
	var p struct {
		ClientInfo activity.ClientInfo `json:"clientInfo"`
	}
	_ = json.Unmarshal(init, &p)
	return p.ClientInfo
}

// outcome is what a call's goroutine learns of its answer, so that the session actor
// never decodes a result: whether it is a tool error, and that error's text.
type outcome struct {
	toolError bool
	text      string
	took      time.Duration
}

// maxErrorText caps the error text a record keeps.
const maxErrorText = 1024

// inspect reads a tools/call result's isError and text.
func inspect(method string, result json.RawMessage) outcome {
	if mcp.MCPMethod(method) != mcp.MethodToolsCall || len(result) == 0 {
		return outcome{}
	}
	var r struct {
		IsError bool `json:"isError"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	}
	if json.Unmarshal(result, &r) != nil || !r.IsError {
		return outcome{}
	}
	o := outcome{toolError: true}
	for _, c := range r.Content {
		if c.Type == "text" {
			o.text += c.Text
		}
		if len(o.text) >= maxErrorText {
			o.text = o.text[:maxErrorText]
			break
		}
	}
	return o
}

// newRecord starts the activity record of an agent request, nil if the log does not keep
// its method.
func (s *session) newRecord(m Message, credential string) *activity.Record {
	if s.o.Activity == nil {
		return nil
	}
	rec, ok := NewRecord(m.Method, m.Params)
	if !ok {
		return nil
	}
	rec.StartedAt, rec.Endpoint, rec.Server = time.Now().UTC(), "/mcp/server/"+s.o.Server, s.o.Server
	rec.SessionID, rec.Client, rec.Credential = s.o.ID, s.client, credential
	return &rec
}

// record finishes a call's activity record and hands it to the log.
func (s *session) record(c *call, d *callDone, why string) {
	if c.rec == nil || s.o.Activity == nil {
		return
	}
	rec := *c.rec
	rec.SetDuration(time.Since(rec.StartedAt))
	switch {
	case d == nil:
		rec.Outcome, rec.Reason, rec.Error = activity.OutcomeError, "UNAVAILABLE", why
	case c.cancelled:
		rec.Outcome, rec.Reason, rec.Error = activity.OutcomeError, "CANCELLED", "cancelled by the client"
		rec.Upstream = d.out.took
	case errors.Is(d.err, context.DeadlineExceeded):
		rec.Outcome, rec.Reason, rec.Error = activity.OutcomeError, "TIMEOUT", "timed out after "+s.timeout.String()
		rec.Upstream = d.out.took
	case d.err != nil:
		rec.Outcome, rec.Reason, rec.Error = activity.OutcomeError, "UPSTREAM_ERROR", d.err.Error()
		rec.Upstream = d.out.took
	case d.rpcErr != nil:
		rec.Outcome, rec.Reason, rec.Error = activity.OutcomeError, strconv.Itoa(d.rpcErr.Code), d.rpcErr.Message
		rec.Upstream = d.out.took
	default:
		rec.Outcome, rec.ResultBytes, rec.Upstream = activity.OutcomeOK, len(d.result), d.out.took
		if d.out.toolError {
			rec.Outcome, rec.Error = activity.OutcomeToolError, d.out.text
		}
	}
	rec.Scrub = s.o.Target.Dial.Scrub
	s.o.Activity(rec)
}
