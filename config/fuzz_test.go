package config

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error it gives names a field, and that
// whatever it accepts survives the trip through Marshal unchanged: Marshal's output parses
// without errors and marshals to the same bytes, and Compare sees no difference.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"mcpServers": []}`,
		`{"mcpServers": {"gh": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"], "env": {"GITHUB_TOKEN": "${secret:GITHUB_TOKEN}"}}}}`,
		`{"listen": "127.0.0.1:8080", "api_key": "k", "require_mcp_auth": false, "trusted_hosts": ["h"], "tools_limit": 15,
		  "call_tool_timeout": "2m", "restart_concurrency": 8, "docker_isolation": {"enabled": true, "default_image": "node:22-slim"},
		  "mcpServers": [{"name": "a", "protocol": "sse", "url": "https://h/sse?k=${env:K}", "headers": {"Authorization": "Bearer ${secret:T}"},
		  "enabled": true, "quarantined": false}, {"name": "b", "command": "uvx", "working_dir": "/tmp", "isolation": {"enabled": true, "image": "python:3", "network": "none"}}]}`,
		`{"mcpServers": [{"name": "x", "comand": "c", "bogus": 1}], "lisen": 1}`,
		`{"mcpServers": {"x": {"name": "y", "command": "c"}, "x": {}}}`,
		`{"call_tool_timeout": 120, "tools_limit": 1.5, "listen": ["a"]}`,
		`{"mcpServers": [{"name": "a", "command": "c", "args": ["${secret:", "${env:X}", "${SECRET:Y}"]}]}`,
		`{"mcpServers": [null, 1, "s", [], {"name": null}]}`,
		"\xEF\xBB\xBF{\"listen\": \"[::1]:0\"}",
		`{"listen": }`,
		`[]`,
		`[1, "a\\\"]", {"k": [true, null]}, -2.5e3]`,
		`{"a\u0062": 1, "a": {"x": "}"}, "a": 2 }`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkScanner(t, data)
		c, errs := Parse(data)
		if c == nil {
			t.Fatal("Parse returned a nil config")
		}
		for _, e := range errs {
			if e.Field == "" || e.Message == "" {
				t.Fatalf("error without a field or message: %+v (all: %v)", e, errs)
			}
		}
		if len(errs) > 0 {
			return
		}
		out, err := Marshal(c)
		if err != nil {
			t.Fatalf("Marshal of an accepted config: %v", err)
		}
		again, errs := Parse(out)
		if len(errs) > 0 {
			t.Fatalf("Marshal output does not parse: %v\n%s", errs, out)
		}
		out2, err := Marshal(again)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("Marshal is not stable (%v):\n%s\n%s", err, out, out2)
		}
		if d := Compare(c, again); !diffEmpty(d) || len(d.Unchanged) != len(c.Servers) {
			t.Fatalf("round trip changed the config: %+v", d)
		}
		n := c.Clone()
		n.Normalize()
		if verrs := n.Validate(); len(verrs) > 0 {
			t.Fatalf("normalised config does not validate: %v", verrs)
		}
	})
}

// checkScanner compares the hand-written object and array splitter Parse relies on with
// encoding/json on the same valid input.
func checkScanner(t *testing.T, data []byte) {
	if !json.Valid(data) {
		return
	}
	switch kindOf(data) {
	case "object":
		var want map[string]json.RawMessage
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		got := map[string]json.RawMessage{}
		for _, m := range objectMembers(data) {
			got[m.key] = m.value // the last of repeated keys wins, as in encoding/json
		}
		if len(got) != len(want) {
			t.Fatalf("objectMembers found %d keys, encoding/json %d", len(got), len(want))
		}
		for k, v := range want {
			if !bytes.Equal(bytes.TrimSpace(got[k]), bytes.TrimSpace(v)) {
				t.Fatalf("member %q = %s, encoding/json says %s", k, got[k], v)
			}
		}
	case "array":
		var want []json.RawMessage
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		got := arrayItems(data)
		if len(got) != len(want) {
			t.Fatalf("arrayItems found %d items, encoding/json %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], bytes.TrimSpace(want[i])) {
				t.Fatalf("item %d = %s, encoding/json says %s", i, got[i], want[i])
			}
		}
	}
}
