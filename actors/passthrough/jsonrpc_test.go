package passthrough

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// TestParse: one message or a batch; bodies that are no JSON-RPC message are refused.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		n          int
		batch      bool
		err        string
	}{
		{"request", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, 1, false, ""},
		{"notification", ` {"jsonrpc":"2.0","method":"notifications/initialized"} `, 1, false, ""},
		{"answer", `{"jsonrpc":"2.0","id":"s-1","result":{}}`, 1, false, ""},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"error":{"code":1,"message":"x"}}]`, 2, true, ""},
		{"empty", ``, 0, false, "empty body"},
		{"empty batch", `[]`, 0, true, "empty batch"},
		{"not JSON", `{`, 0, false, "parse error"},
		{"neither", `{"jsonrpc":"2.0","id":3}`, 0, false, "neither a request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, batch, err := Parse([]byte(tc.body))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(msgs) != tc.n || batch != tc.batch {
				t.Fatalf("%d messages, batch %v, err %v", len(msgs), batch, err)
			}
		})
	}
}

// TestInitParams: a protocol revision newer than the passthrough speaks is lowered to the
// latest session-oriented one, other fields kept; anything else passes byte for byte.
func TestInitParams(t *testing.T) {
	raw := json.RawMessage(`{"protocolVersion":"2025-06-18","capabilities":{"x-cap":{}},"clientInfo":{"name":"a","version":"1"}}`)
	out, info, err := InitParams(raw)
	if err != nil || string(out) != string(raw) || info.Name != "a" || info.Version != "1" {
		t.Fatalf("%s %+v %v", out, info, err)
	}
	out, _, err = InitParams(json.RawMessage(`{"protocolVersion":"2026-07-28","capabilities":{"x-cap":{}}}`))
	var p struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
	}
	if err != nil || json.Unmarshal(out, &p) != nil || p.ProtocolVersion != mcp.LATEST_LEGACY_PROTOCOL_VERSION || string(p.Capabilities) != `{"x-cap":{}}` {
		t.Fatalf("lowered %s %v", out, err)
	}
	if _, _, err := InitParams(json.RawMessage(`[]`)); err == nil {
		t.Fatal("params that are not an object were accepted")
	}
}

// TestStream: what a handler could not write goes back in front; moving a stream's
// messages to another leaves the answers behind.
func TestStream(t *testing.T) {
	s := NewStream(true)
	s.push([]byte("a"), false)
	s.push([]byte("b"), false)
	msgs, done := s.Take()
	if len(msgs) != 2 || done {
		t.Fatalf("take %q %v", msgs, done)
	}
	s.push([]byte("c"), false)
	s.Unread(msgs)
	s.push([]byte("answer"), true)
	s.push([]byte("d"), false)
	if got := s.drain(); !slices.EqualFunc(got, []string{"a", "b", "c", "d"}, func(b []byte, s string) bool { return string(b) == s }) {
		t.Fatalf("drain %q, want the unread ones first and no answer", got)
	}
	s.end()
	<-s.Wake()
	if _, done := s.Take(); !done {
		t.Fatal("an ended stream is not done")
	}
}
