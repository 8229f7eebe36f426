package test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors"
)

// TestMCPAll drives /mcp/all with mcp-go's client against two fixture servers: every tool
// listed as itself under server__tool beside the proxy's own three, its schema as the server
// wrote it, calls routed to each server, notifications/tools/list_changed when a server is
// quarantined, and its tools gone from the list and refused afterwards; then mcp_mode
// direct makes /mcp offer the same.
func TestMCPAll(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "fa"), stdioFixture(t, "fb")))
	p.waitState("fa", 30*time.Second, actors.StateReady)
	p.waitState("fb", 30*time.Second, actors.StateReady)

	t.Log("servers ready")
	c := dialMCP(t, p.URL+"/mcp/all", p.mcpKey(), "all", transport.WithContinuousListening())
	changed := make(chan struct{}, 16)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == string(mcp.MethodNotificationToolsListChanged) {
			changed <- struct{}{}
		}
	})
	var names []string
	waitFor(t, 20*time.Second, "both servers' tools on /mcp/all", func() bool {
		names = toolNames(t, c)
		return slices.Contains(names, "fa__echo") && slices.Contains(names, "fb__echo")
	})
	for _, want := range []string{"retrieve_tools", "call_tool", "upstream_servers", "fa__add", "fb__add"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools/list lacks %s: %v", want, names)
		}
	}
	for _, n := range names {
		if n == "echo" || n == "fa:echo" {
			t.Errorf("tool listed without its namespace: %s", n)
		}
	}

	// The definition is the upstream's, only renamed.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	listed, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var upstreamTools actors.ServerTools
	if code, body := p.do("GET", "/api/v1/servers/fa/tools", nil, &upstreamTools); code != 200 {
		t.Fatalf("server tools: %d %s", code, body)
	}
	for _, lt := range listed.Tools {
		if lt.Name != "fa__echo" {
			continue
		}
		for _, ut := range upstreamTools.Tools {
			if ut.Name == "fa:echo" && lt.Description != ut.Description {
				t.Errorf("description changed: %q, upstream %q", lt.Description, ut.Description)
			}
		}
		if len(lt.RawInputSchema) == 0 && lt.InputSchema.Properties["text"] == nil {
			t.Errorf("fa__echo input schema lost its text property: %+v", lt.InputSchema)
		}
	}

	if got := textOf(callTool(t, c, "fa__echo", map[string]any{"text": "to a"})); got != "to a" {
		t.Errorf("fa__echo = %q", got)
	}
	if got := textOf(callTool(t, c, "fb__add", map[string]any{"a": 2, "b": 3})); got != "5" {
		t.Errorf("fb__add = %q", got)
	}

	t.Log("calls done")

	// An agent token's scope filters the list and refuses a call outside it.
	narrow := p.createToken(map[string]any{"name": "only-fa", "servers": []string{"fa"}})
	scoped := dialMCP(t, p.URL+"/mcp/all", bearerOf(narrow.Token), "scoped")
	scopedNames := toolNames(t, scoped)
	if !slices.Contains(scopedNames, "fa__echo") || slices.Contains(scopedNames, "fb__echo") || !slices.Contains(scopedNames, "call_tool") {
		t.Errorf("token scoped to fa lists %v", scopedNames)
	}
	outside := mcp.CallToolRequest{}
	outside.Params.Name, outside.Params.Arguments = "fb__echo", map[string]any{"text": "x"}
	// mcp-go applies the list filter to calls too: a tool outside the scope is not found.
	if res, err := scoped.CallTool(ctx, outside); err == nil {
		t.Errorf("a call outside the token's scope answered: %+v", res)
	}
	quarantineAndWait(t, p, "fb", true, changed)
	waitFor(t, 10*time.Second, "fb's tools gone", func() bool {
		return !slices.Contains(toolNames(t, c), "fb__echo")
	})
	if names := toolNames(t, c); !slices.Contains(names, "fa__echo") {
		t.Errorf("fa's tools gone too: %v", names)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "fb__echo", map[string]any{"text": "x"}
	if res, err := c.CallTool(ctx, req); err == nil && !res.IsError {
		t.Errorf("a quarantined server's tool answered: %q", textOf(res))
	}

	// Out of quarantine, its tools come back beside fa's (added to the listed set, not
	// relisted whole) and answer.
	quarantineAndWait(t, p, "fb", false, changed)
	waitFor(t, 20*time.Second, "fb's tools back", func() bool {
		return slices.Contains(toolNames(t, c), "fb__echo")
	})
	if names := toolNames(t, c); !slices.Contains(names, "fa__echo") || !slices.Contains(names, "retrieve_tools") {
		t.Errorf("fa's or the proxy's tools gone when fb's came back: %v", names)
	}
	req.Params.Arguments = map[string]any{"text": "back"}
	if res, err := c.CallTool(ctx, req); err != nil || res.IsError || !strings.Contains(textOf(res), "back") {
		t.Errorf("fb__echo after quarantine: %v %+v", err, res)
	}

	// The activity log records the endpoint.
	var acts struct {
		Records []struct {
			Endpoint string `json:"endpoint"`
			Server   string `json:"server"`
			Tool     string `json:"tool"`
		} `json:"records"`
	}
	waitFor(t, 10*time.Second, "activity records of /mcp/all", func() bool {
		p.do("GET", "/api/v1/activity?server=fb", nil, &acts)
		for _, r := range acts.Records {
			if r.Endpoint == "/mcp/all" && r.Tool == "add" {
				return true
			}
		}
		return false
	})

	// mcp_mode direct: /mcp lists the same.
	var got struct {
		Config map[string]any `json:"config"`
	}
	if code, body := p.do("GET", "/api/v1/config", nil, &got); code != 200 {
		t.Fatalf("config: %d %s", code, body)
	}
	cfg := got.Config
	cfg["mcp_mode"] = "direct"
	t.Log("applying direct mode")
	if code, body := p.do("POST", "/api/v1/config/apply", cfg, nil); code != 200 {
		t.Fatalf("apply mcp_mode direct: %d %s", code, body)
	}
	direct := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "direct")
	if names := toolNames(t, direct); !slices.Contains(names, "fa__echo") || !slices.Contains(names, "call_tool") {
		t.Errorf("/mcp in direct mode lists %v", names)
	}
}

func drain(ch chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// TestMCPAllTypeScriptClient drives /mcp/all with the official TypeScript SDK
// (test/mcp_all_client.mjs) against server-everything and the fixture: both servers' tools
// namespaced, a call to each, list_changed when fx is quarantined and its tools gone after.
func TestMCPAllTypeScriptClient(t *testing.T) {
	p := startProxy(t, servers(everythingServer(t, "everything"), stdioFixture(t, "fx")))
	p.waitState("everything", 60*time.Second, actors.StateReady)
	p.waitState("fx", 30*time.Second, actors.StateReady)
	c := dialMCP(t, p.URL+"/mcp/all", p.mcpKey(), "wait")
	waitFor(t, 20*time.Second, "both servers' tools on /mcp/all", func() bool {
		names := toolNames(t, c)
		return slices.Contains(names, "everything__echo") && slices.Contains(names, "fx__echo")
	})
	out := runMCPScript(t, p, "mcp_all_client.mjs", 90*time.Second)
	var got struct {
		Tools            []string `json:"tools"`
		EverythingEcho   string   `json:"everythingEcho"`
		FxEcho           string   `json:"fxEcho"`
		QuarantineStatus int      `json:"quarantineStatus"`
		ListChanged      bool     `json:"listChanged"`
		ToolsAfter       []string `json:"toolsAfter"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("decoding %s: %v", out, err)
	}
	for _, want := range []string{"everything__echo", "everything__get-sum", "fx__echo", "fx__add", "call_tool"} {
		if !slices.Contains(got.Tools, want) {
			t.Errorf("tools lack %s: %v", want, got.Tools)
		}
	}
	if got.EverythingEcho != "Echo: ts all" || got.FxEcho != "ts fx" {
		t.Errorf("calls: everything %q, fx %q", got.EverythingEcho, got.FxEcho)
	}
	if got.QuarantineStatus != 200 || !got.ListChanged {
		t.Errorf("quarantine %d, list_changed %v", got.QuarantineStatus, got.ListChanged)
	}
	if slices.Contains(got.ToolsAfter, "fx__echo") || !slices.Contains(got.ToolsAfter, "everything__echo") {
		t.Errorf("tools after quarantine: %v", got.ToolsAfter)
	}
}

// quarantineAndWait sets server's quarantine flag and waits for the list_changed it causes
// on changed (drained first).
func quarantineAndWait(t *testing.T, p *proxy, server string, quarantined bool, changed chan struct{}) {
	t.Helper()
	drain(changed)
	if code, body := p.do("POST", "/api/v1/servers/"+server+"/quarantine", map[string]any{"quarantined": quarantined}, nil); code != 200 {
		t.Fatalf("quarantine %v: %d %s", quarantined, code, body)
	}
	select {
	case <-changed:
	case <-time.After(20 * time.Second):
		t.Fatalf("no notifications/tools/list_changed after setting %s's quarantine to %v", server, quarantined)
	}
}
