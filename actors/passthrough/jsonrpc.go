package passthrough

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors/upstream"
)

// JSON-RPC error codes the passthrough answers with, besides the standard ones.
const (
	// CodeRequestTimeout answers a request that took longer than call_tool_timeout, as the
	// official SDKs do.
	CodeRequestTimeout = -32001
	// CodeRefused answers a request the proxy will not relay (quarantine, session gone).
	CodeRefused = -32000
)

// Message is one JSON-RPC message from the agent, its fields raw.
type Message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// IsRequest reports whether m expects an answer.
func (m Message) IsRequest() bool { return m.Method != "" && upstream.HasID(m.ID) }

// Parse reads a POST body: one message, or a batch (protocol 2025-03-26), which batch
// reports.
func Parse(body []byte) (msgs []Message, batch bool, err error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, false, errors.New("empty body: a JSON-RPC message is expected")
	}
	batch = body[0] == '['
	if batch {
		if err := json.Unmarshal(body, &msgs); err != nil {
			return nil, true, fmt.Errorf("parse error: %v", err)
		}
		if len(msgs) == 0 {
			return nil, true, errors.New("empty batch")
		}
	} else {
		var m Message
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, false, fmt.Errorf("parse error: %v", err)
		}
		msgs = []Message{m}
	}
	for _, m := range msgs {
		if m.Method == "" && (!upstream.HasID(m.ID) || (len(m.Result) == 0 && len(m.Error) == 0)) {
			return nil, batch, errors.New("invalid JSON-RPC message: neither a request, a notification nor a response")
		}
	}
	return msgs, batch, nil
}

// Wire is a JSON-RPC message to send; raw fields pass unchanged (but compacted).
type Wire = upstream.WireMessage

// Encode marshals v compactly on one line, without escaping <, > and &.
func Encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// Failure is the answer to a request the proxy could not relay: a tool error for
// tools/call (so the agent's model sees the reason), a JSON-RPC error otherwise.
func Failure(m Message, code int, msg string) Wire {
	if m.Method == string(mcp.MethodToolsCall) {
		res, _ := Encode(map[string]any{"content": []any{map[string]any{"type": "text", "text": msg}}, "isError": true})
		return Wire{JSONRPC: "2.0", ID: m.ID, Result: res}
	}
	return Wire{JSONRPC: "2.0", ID: m.ID, Error: &upstream.RPCError{Code: code, Message: msg}}
}

// InitParams returns the params of an agent's initialize to send upstream, and the
// client's info for the session record. A protocol revision newer than the passthrough
// speaks (the stateless 2026-07-28 core) is lowered to the latest session-oriented one;
// everything else passes unchanged.
func InitParams(raw json.RawMessage) (json.RawMessage, mcp.Implementation, error) {
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

// canon is the key of a JSON-RPC id or progress token: its compact JSON text.
func canon(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

// progressToken returns the canonical progressToken of params (under params._meta when
// under is "_meta"), "" if there is none.
func progressToken(params json.RawMessage, under string) string {
	if len(params) == 0 {
		return ""
	}
	var tok json.RawMessage
	if under == "" {
		var p struct {
			Token json.RawMessage `json:"progressToken"`
		}
		if json.Unmarshal(params, &p) != nil {
			return ""
		}
		tok = p.Token
	} else {
		var p struct {
			Meta struct {
				Token json.RawMessage `json:"progressToken"`
			} `json:"_meta"`
		}
		if json.Unmarshal(params, &p) != nil {
			return ""
		}
		tok = p.Meta.Token
	}
	if !upstream.HasID(tok) {
		return ""
	}
	return canon(tok)
}

// setField returns params with one top-level field replaced; the others stay as they are.
func setField(params json.RawMessage, key string, v any) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(params) > 0 {
		if err := json.Unmarshal(params, &m); err != nil {
			return nil, err
		}
	}
	val, err := Encode(v)
	if err != nil {
		return nil, err
	}
	m[key] = val
	return Encode(m)
}
