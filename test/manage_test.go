package test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/config"
)

type serverAnswer struct {
	Server actors.Server `json:"server"`
}

// TestManageServersRoundTrip adds, patches and deletes a server over REST: each change is
// in the file, survives a restart, publishes servers.changed with its reason, and leaves
// the other server's process alone.
func TestManageServersRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := startProxyIn(t, dir, servers(stdioFixture(t, "keep")))
	p.waitState("keep", 20*time.Second, actors.StateReady)
	keepPID := serverPID(t, p, "keep")
	s := openSSE(t, p, "/events", keyHeader(p))
	defer s.Close()

	entry := map[string]any{"name": "added", "command": fixtureBin(t), "args": []string{"--name", "added"}}
	var got serverAnswer
	if code, body := p.do("POST", "/api/v1/servers", entry, &got); code != 201 {
		t.Fatalf("POST /api/v1/servers: %d %s", code, body)
	}
	if got.Server.Name != "added" || !got.Server.Quarantined {
		t.Errorf("added server %+v, want quarantined", got.Server)
	}
	if code, body := p.do("POST", "/api/v1/servers", entry, nil); code != 409 || !strings.Contains(string(body), "CONFLICT") {
		t.Errorf("duplicate POST: %d %s, want 409 CONFLICT", code, body)
	}
	p.waitState("added", 20*time.Second, actors.StateReady)
	addedPID := serverPID(t, p, "added")
	if got := p.namesOnDisk(); !slices.Equal(got, []string{"keep", "added"}) {
		t.Errorf("file has %v after add", got)
	}

	// An explicit "quarantined": false is kept.
	open := map[string]any{"name": "open", "command": fixtureBin(t), "args": []string{"--name", "open"}, "quarantined": false}
	if code, body := p.do("POST", "/api/v1/servers", open, &got); code != 201 || got.Server.Quarantined {
		t.Errorf("POST quarantined:false: %d %s", code, body)
	}

	patch := map[string]any{"env": map[string]string{"PATCHED": "yes"}}
	if code, body := p.do("PATCH", "/api/v1/servers/added", patch, &got); code != 200 || got.Server.Name != "added" {
		t.Fatalf("PATCH: %d %s", code, body)
	}
	if code, body := p.do("PATCH", "/api/v1/servers/nosuch", patch, nil); code != 404 {
		t.Errorf("PATCH unknown: %d %s, want 404", code, body)
	}
	p.waitState("added", 20*time.Second, actors.StateReady)
	waitFor(t, 10*time.Second, "the patched server's new process", func() bool {
		return serverPID(t, p, "added") != addedPID
	})
	if got := serverPID(t, p, "keep"); got != keepPID {
		t.Errorf("keep's process changed on add/patch: %d -> %d", keepPID, got)
	}

	evs := s.waitEvents(10*time.Second, "added and updated", func(evs []sseEvent) bool {
		return hasReason(t, evs, "added", actors.ReasonAdded) && hasReason(t, evs, "added", actors.ReasonUpdated)
	})
	if hasReason(t, evs, "keep", actors.ReasonUpdated) || hasReason(t, evs, "keep", actors.ReasonRestart) {
		t.Errorf("keep was touched: %s", describeEvents(evs))
	}

	// Persisted: a restart on the same data dir has the entry with its patch.
	p.Stop()
	p = startProxyIn(t, dir, nil)
	cfg, errs := config.Parse(p.readConfigFile())
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	sc, ok := cfg.Server("added")
	if !ok || sc.Env["PATCHED"] != "yes" || !sc.IsQuarantined() {
		t.Fatalf("after restart added = %+v (found %v)", sc, ok)
	}
	p.waitState("added", 20*time.Second, actors.StateReady)
	p.waitState("keep", 20*time.Second, actors.StateReady)
	keepPID, addedPID = serverPID(t, p, "keep"), serverPID(t, p, "added")
	s2 := openSSE(t, p, "/events", keyHeader(p))
	defer s2.Close()

	if code, body := p.do("DELETE", "/api/v1/servers/added", nil, &got); code != 200 || got.Server.Name != "added" {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	// The answer comes after the process is gone.
	if processAlive(addedPID) {
		t.Errorf("added's process %d still runs after DELETE answered", addedPID)
	}
	if code, _ := p.do("GET", "/api/v1/servers/added", nil, nil); code != 404 {
		t.Errorf("GET removed server: %d, want 404", code)
	}
	if code, _ := p.do("DELETE", "/api/v1/servers/added", nil, nil); code != 404 {
		t.Errorf("second DELETE: %d, want 404", code)
	}
	if got := p.namesOnDisk(); !slices.Equal(got, []string{"keep", "open"}) {
		t.Errorf("file has %v after delete", got)
	}
	if got := serverPID(t, p, "keep"); got != keepPID {
		t.Errorf("keep's process changed on delete: %d -> %d", keepPID, got)
	}
	s2.waitEvents(10*time.Second, "removed", func(evs []sseEvent) bool { return hasReason(t, evs, "added", actors.ReasonRemoved) })
}

func hasReason(t testing.TB, evs []sseEvent, server, reason string) bool {
	for _, e := range evs {
		if c, ok := decodeChanged(t, e); ok && c.Server.Name == server && c.Reason == reason {
			return true
		}
	}
	return false
}

// TestManageServersBadEntries: entries that do not validate are 400 with the field named,
// and change nothing.
func TestManageServersBadEntries(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "keep")))
	before := string(p.readConfigFile())
	cases := []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"no command", "POST", "/api/v1/servers", map[string]any{"name": "x"}, "command"},
		{"typo", "POST", "/api/v1/servers", map[string]any{"name": "x", "comand": "y"}, "comand"},
		{"bad name", "POST", "/api/v1/servers", map[string]any{"name": "a b", "command": "y"}, "name"},
		{"no name", "POST", "/api/v1/servers", map[string]any{"command": "y"}, "name"},
		{"wrong type", "POST", "/api/v1/servers", map[string]any{"name": "x", "command": "y", "args": "z"}, "args"},
		{"both", "POST", "/api/v1/servers", map[string]any{"name": "x", "command": "y", "url": "http://h/"}, "url"},
		{"not json", "POST", "/api/v1/servers", "{", "$"},
		{"rename", "PATCH", "/api/v1/servers/keep", map[string]any{"name": "other"}, "name"},
		{"patch breaks", "PATCH", "/api/v1/servers/keep", map[string]any{"url": "http://h/"}, "url"},
		{"patch type", "PATCH", "/api/v1/servers/keep", map[string]any{"env": map[string]any{"A": 1}}, "env.A"},
		{"patch not object", "PATCH", "/api/v1/servers/keep", []any{1}, "$"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e applyResponse
			code, body := p.do(c.method, c.path, c.body, &e)
			if code != 400 || e.Code != "INVALID_ARGUMENT" {
				t.Fatalf("%d %s, want 400 INVALID_ARGUMENT", code, body)
			}
			if !slices.ContainsFunc(e.Errors, func(fe config.FieldError) bool { return fe.Field == c.field }) {
				t.Errorf("errors %+v do not name %q", e.Errors, c.field)
			}
			if !strings.Contains(e.Error, c.field) {
				t.Errorf("message %q does not name %q", e.Error, c.field)
			}
		})
	}
	if after := string(p.readConfigFile()); after != before {
		t.Errorf("bad entries changed the file:\n%s", after)
	}
	var list struct {
		Servers []actors.Server `json:"servers"`
	}
	p.do("GET", "/api/v1/servers", nil, &list)
	if len(list.Servers) != 1 {
		t.Errorf("servers after bad entries: %+v", list.Servers)
	}
}

type logsAnswer struct {
	Server string           `json:"server"`
	Lines  []actors.LogLine `json:"lines"`
}

// TestServerLogs: a stdio server that fails writes to stderr; its log has those lines and
// the daemon's own (failed, retrying), scrubbed of the secret its args resolve to; follow
// streams new lines as SSE.
func TestServerLogs(t *testing.T) {
	t.Setenv("MANAGE_LOG_TOKEN", "tok-5f0c9a1e7b")
	script := `echo "starting with token $1" >&2; echo "fatal: cannot open database" >&2; exit 3`
	p := startProxy(t, servers(map[string]any{
		"name": "broken", "command": "/bin/sh", "args": []string{"-c", script, "sh", "${env:MANAGE_LOG_TOKEN}"},
	}))
	var out logsAnswer
	waitFor(t, 20*time.Second, "the failure in the log", func() bool {
		if code, body := p.do("GET", "/api/v1/servers/broken/logs?tail=50", nil, &out); code != 200 {
			t.Fatalf("logs: %d %s", code, body)
		}
		return hasLine(out.Lines, actors.LogStderr, "fatal: cannot open database") && hasLine(out.Lines, actors.LogProxy, "failed:")
	})
	for _, l := range out.Lines {
		if strings.Contains(l.Text, "tok-5f0c9a1e7b") {
			t.Errorf("log line shows the secret: %q", l.Text)
		}
	}
	if !hasLine(out.Lines, actors.LogStderr, "starting with token") {
		t.Errorf("no scrubbed first line in %+v", out.Lines)
	}
	if code, _ := p.do("GET", "/api/v1/servers/broken/logs?tail=2", nil, &out); code != 200 || len(out.Lines) != 2 {
		t.Errorf("tail=2 gave %d lines", len(out.Lines))
	}
	for _, q := range []string{"tail=-1", "tail=x", "tail=100000", "follow=maybe"} {
		if code, body := p.do("GET", "/api/v1/servers/broken/logs?"+q, nil, nil); code != 400 {
			t.Errorf("?%s: %d %s, want 400", q, code, body)
		}
	}
	if code, _ := p.do("GET", "/api/v1/servers/nosuch/logs", nil, nil); code != 404 {
		t.Errorf("unknown server's logs: %d, want 404", code)
	}

	s := openSSE(t, p, "/api/v1/servers/broken/logs?follow=true&tail=1", keyHeader(p))
	defer s.Close()
	if s.Resp.StatusCode != 200 || !strings.HasPrefix(s.Resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("follow: %d %s", s.Resp.StatusCode, s.Resp.Header.Get("Content-Type"))
	}
	s.waitCount(1, 5*time.Second)
	// The server keeps failing and retrying: new lines arrive on the stream.
	evs := s.waitEvents(20*time.Second, "new lines", func(evs []sseEvent) bool {
		n := 0
		for _, e := range evs {
			var l actors.LogLine
			if e.Name == "log" && json.Unmarshal([]byte(e.Data), &l) == nil && strings.Contains(l.Text, "fatal: cannot open database") {
				n++
			}
		}
		return n >= 1 && len(evs) >= 3
	})
	for _, e := range evs {
		if strings.Contains(e.Data, "tok-5f0c9a1e7b") {
			t.Errorf("followed line shows the secret: %s", e.Data)
		}
	}
	// Removing the server ends the stream.
	if code, body := p.do("DELETE", "/api/v1/servers/broken", nil, nil); code != 200 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	waitFor(t, 10*time.Second, "the stream to end", func() bool { ended, _ := s.Ended(); return ended })
}

func hasLine(lines []actors.LogLine, stream, text string) bool {
	return slices.ContainsFunc(lines, func(l actors.LogLine) bool { return l.Stream == stream && strings.Contains(l.Text, text) })
}
