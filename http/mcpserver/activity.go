package mcpserver

import (
	"context"
	"encoding/json"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/activity"
)

// Recorder takes the activity records of /mcp's call_tool; *activity.Client implements it
// (a nil one records nothing). Record must not block: it is on the call path.
type Recorder interface {
	Record(r activity.Record)
}

var _ Recorder = (*activity.Client)(nil)

// maxErrorText caps the error text a record keeps of a tool error's result.
const maxErrorText = 1024

// newRecord starts the record of a call: when, who (the caller the key check put in the
// context, and the session's client as its initialize named it).
func (e *Endpoint) newRecord(ctx context.Context) activity.Record {
	rec := activity.Record{StartedAt: time.Now().UTC(), Endpoint: "/mcp", Method: string(mcp.MethodToolsCall)}
	if ep, ok := ctx.Value(endpointKey{}).(string); ok {
		rec.Endpoint = ep
	}
	if c, ok := actors.CallerFrom(ctx); ok {
		rec.Credential, rec.SessionID = c.Credential, c.SessionID
		rec.Client = activity.ClientInfo{Name: c.ClientName, Version: c.ClientVersion}
	}
	if s := server.ClientSessionFromContext(ctx); s != nil {
		rec.SessionID = s.SessionID()
		if ci, ok := s.(server.SessionWithClientInfo); ok && rec.Client.Name == "" {
			info := ci.GetClientInfo()
			rec.Client = activity.ClientInfo{Name: info.Name, Version: info.Version}
		}
	}
	return rec
}

// finish stamps the duration and hands the record over.
func (e *Endpoint) finish(rec activity.Record) {
	rec.SetDuration(time.Since(rec.StartedAt))
	if e.opts.Activity != nil {
		e.opts.Activity.Record(rec)
	}
}

// refuse records a call the proxy would not make and answers it as a tool error.
func (e *Endpoint) refuse(rec activity.Record, why string) *mcp.CallToolResult {
	rec.Outcome, rec.Reason, rec.Error = activity.OutcomeRefused, activity.ReasonInvalid, why
	e.finish(rec)
	return mcp.NewToolResultError(why)
}

// recordFailure records a call that failed: refused by the registry or the upstream
// actor before it reached the upstream, or an error on the way (with its code).
func (e *Endpoint) recordFailure(rec activity.Record, err error) {
	rec.Error = err.Error()
	if why := actors.RefusalOf(err); why != "" {
		rec.Outcome, rec.Reason = activity.OutcomeRefused, why
	} else {
		rec.Outcome, rec.Reason = activity.OutcomeError, string(actors.ErrorCode(err))
	}
	e.finish(rec)
}

// recordResult records the upstream's answer: its size and whether it is a tool error.
func (e *Endpoint) recordResult(rec activity.Record, res *mcp.CallToolResult) {
	rec.Outcome = activity.OutcomeOK
	// Counted as encoded, not kept: a result may be as large as max_message_bytes, and only
	// its size is recorded.
	var n byteCounter
	if err := json.NewEncoder(&n).Encode(res); err == nil {
		rec.ResultBytes = int(n) - 1 // Encode ends the value with a newline
	}
	if res.IsError {
		rec.Outcome = activity.OutcomeToolError
		rec.Error = resultText(res.Content)
	}
	e.finish(rec)
}

// byteCounter is an io.Writer that counts what is written to it.
type byteCounter int

func (c *byteCounter) Write(p []byte) (int, error) {
	*c += byteCounter(len(p))
	return len(p), nil
}

// resultText is the text of a tool error's result, capped.
func resultText(content []mcp.Content) string {
	var out string
	for _, c := range content {
		if t, ok := mcp.AsTextContent(c); ok {
			if out != "" {
				out += "\n"
			}
			out += t.Text
			if len(out) >= maxErrorText {
				return capText(out, maxErrorText)
			}
		}
	}
	return out
}

// capText cuts s to at most n bytes on a character boundary.
func capText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// encodeArguments is the JSON of what the agent passed as arguments (scrubbed and capped
// later, by the activity log's writer).
func encodeArguments(v any) json.RawMessage {
	data, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return data
}
