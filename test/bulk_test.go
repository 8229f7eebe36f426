package test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/actors"
)

// bulk posts a bulk operation with an optional selection body and returns its answer.
func bulk(t *testing.T, p *proxy, op string, body any) actors.BulkResult {
	t.Helper()
	var res actors.BulkResult
	if code, raw := p.do("POST", "/api/v1/servers/"+op, body, &res); code != 200 {
		t.Fatalf("%s %v: %d %s", op, body, code, raw)
	}
	if res.Operation == "" {
		t.Fatalf("%s: no operation id", op)
	}
	return res
}

// waitOperation polls GET /api/v1/operations/{id} until done (bounded).
func waitOperation(t *testing.T, p *proxy, id string) actors.Operation {
	t.Helper()
	var op actors.Operation
	waitFor(t, 60*time.Second, "operation "+id+" done", func() bool {
		if code, raw := p.do("GET", "/api/v1/operations/"+id, nil, &op); code != 200 {
			t.Fatalf("operation %s: %d %s", id, code, raw)
		}
		return op.Done
	})
	return op
}

func opNames(op actors.Operation, status string) []string {
	var out []string
	for _, s := range op.Servers {
		if s.Status == status {
			out = append(out, s.Name)
		}
	}
	return out
}

func TestBulkSelection(t *testing.T) {
	off := stdioFixture(t, "off")
	off["enabled"] = false
	p := startProxy(t, servers(stdioFixture(t, "gh-a"), stdioFixture(t, "gh-b"), stdioFixture(t, "other"), off))
	for _, n := range []string{"gh-a", "gh-b", "other"} {
		p.waitState(n, 20*time.Second, actors.StateReady)
	}

	// unknown names: 404 naming each, and nothing happens
	code, raw := p.do("POST", "/api/v1/servers/restart_all", map[string]any{"servers": []string{"gh-a", "nope", "zz"}}, nil)
	if code != 404 || !strings.Contains(string(raw), "nope") || !strings.Contains(string(raw), "zz") {
		t.Fatalf("unknown names: %d %s", code, raw)
	}
	if s := p.server("gh-a"); s.State != actors.StateReady {
		t.Fatalf("gh-a after a refused bulk call: %s", s.State)
	}
	for _, bad := range []struct {
		body  any
		field string
	}{
		{map[string]any{"bogus": 1}, "bogus"},
		{map[string]any{"match": "["}, "match"},
		{map[string]any{"state": []string{"sleepy"}}, "state"},
	} {
		if code, raw := p.do("POST", "/api/v1/servers/reconnect", bad.body, nil); code != 400 || !strings.Contains(string(raw), bad.field) {
			t.Fatalf("%v: %d %s, want 400 naming %s", bad.body, code, raw, bad.field)
		}
	}

	// by glob
	res := bulk(t, p, "restart_all", map[string]any{"match": "gh-*"})
	if res.Total != 2 || res.Successful != 2 {
		t.Fatalf("restart gh-*: %+v", res)
	}
	op := waitOperation(t, p, res.Operation)
	if op.Ready != 2 || op.Total != 2 || fmt.Sprint(opNames(op, actors.OpReady)) != "[gh-a gh-b]" {
		t.Fatalf("restart gh-* operation: %+v", op)
	}

	// by state
	res = bulk(t, p, "enable_all", map[string]any{"state": []string{"disabled"}})
	if res.Total != 1 {
		t.Fatalf("enable disabled: %+v", res)
	}
	op = waitOperation(t, p, res.Operation)
	if op.Ready != 1 || op.Servers[0].Name != "off" {
		t.Fatalf("enable disabled operation: %+v", op)
	}

	// by names and state together: only what both select
	res = bulk(t, p, "disable_all", map[string]any{"servers": []string{"other", "gh-a"}, "state": []string{"ready"}, "match": "o*"})
	if res.Total != 1 {
		t.Fatalf("disable other: %+v", res)
	}
	if op = waitOperation(t, p, res.Operation); fmt.Sprint(opNames(op, actors.OpReady)) != "[other]" {
		t.Fatalf("disable other operation: %+v", op)
	}
	p.waitState("other", 20*time.Second, actors.StateDisabled)

	// an empty selection: total 0, done at once
	res = bulk(t, p, "reconnect", map[string]any{"match": "nothing-*"})
	if res.Total != 0 {
		t.Fatalf("empty selection: %+v", res)
	}
	if op = waitOperation(t, p, res.Operation); op.Total != 0 || len(op.Servers) != 0 {
		t.Fatalf("empty operation: %+v", op)
	}

	// no body: every server, as before
	res = bulk(t, p, "restart_all", nil)
	if res.Total != 4 || res.Skipped != 1 {
		t.Fatalf("restart_all without a body: %+v", res)
	}
	op = waitOperation(t, p, res.Operation)
	if op.Ready != 3 || fmt.Sprint(opNames(op, actors.OpSkipped)) != "[other]" {
		t.Fatalf("restart_all operation: %+v", op)
	}

	// the history is bounded: the first of 101 newer operations is gone
	first := res.Operation
	for range actors.DefaultOperationsKeep {
		bulk(t, p, "reconnect", map[string]any{"match": "nothing-*"})
	}
	if code, raw := p.do("GET", "/api/v1/operations/"+first, nil, nil); code != 404 {
		t.Fatalf("operation past the bound: %d %s", code, raw)
	}
	if code, _ := p.do("GET", "/api/v1/operations/op_unknown", nil, nil); code != 404 {
		t.Fatalf("unknown operation: %d", code)
	}
}

// TestBulkTwentyOneFails restarts 20 fixture servers, one of which cannot start, and
// follows it over REST, /events and the CLI (--wait --json, and the terminal progress
// under a pseudo-terminal).
func TestBulkTwentyOneFails(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var entries []map[string]any
	for i := 1; i <= 19; i++ {
		entries = append(entries, stdioFixture(t, fmt.Sprintf("fx-%02d", i)))
	}
	entries = append(entries, map[string]any{"name": "broken", "command": filepath.Join(dir, "no-such-server"), "quarantined": false})
	p := startProxyProcess(t, dir, servers(entries...))
	for i := 1; i <= 19; i++ {
		p.waitState(fmt.Sprintf("fx-%02d", i), 30*time.Second, actors.StateReady)
	}
	s := openSSE(t, p, "/events", keyHeader(p))

	res := bulk(t, p, "restart_all", nil)
	if res.Total != 20 {
		t.Fatalf("restart_all: %+v", res)
	}
	op := waitOperation(t, p, res.Operation)
	if op.Ready != 19 || op.Failed != 1 || fmt.Sprint(opNames(op, actors.OpFailed)) != "[broken]" {
		t.Fatalf("operation: %+v", op)
	}
	for _, sv := range op.Servers {
		if sv.Status == actors.OpFailed && sv.Error == "" {
			t.Fatalf("failed without an error: %+v", sv)
		}
	}
	evs := s.waitEvents(20*time.Second, "operation.done", func(evs []sseEvent) bool {
		for _, e := range evs {
			if e.Name == "operation.done" && strings.Contains(e.Data, res.Operation) {
				return true
			}
		}
		return false
	})
	progress := 0
	for _, e := range evs {
		if e.Name == "operation.progress" && strings.Contains(e.Data, res.Operation) {
			progress++
			if strings.Contains(e.Data, "servers") {
				t.Fatalf("progress carries more than counts: %s", e.Data)
			}
		}
		if e.Name == "operation.done" {
			var d actors.OperationEvent
			if err := json.Unmarshal([]byte(e.Data), &d); err != nil || d.Ready != 19 || d.Failed != 1 || !d.Done {
				t.Fatalf("operation.done: %s (%v)", e.Data, err)
			}
		}
	}
	if progress < 2 {
		t.Fatalf("%d operation.progress events", progress)
	}

	// the CLI: --wait --json prints the finished operation and exits 1
	cli := runCLI(t, dir, "", "servers", "restart", "--all", "--wait", "--json")
	var got actors.Operation
	if err := json.Unmarshal([]byte(cli.stdout), &got); err != nil {
		t.Fatalf("--wait --json output %q: %v", cli.stdout, err)
	}
	if cli.code != 1 || !got.Done || got.Ready != 19 || got.Failed != 1 || fmt.Sprint(opNames(got, actors.OpFailed)) != "[broken]" {
		t.Fatalf("--wait --json: exit %d, %+v, stderr %s", cli.code, got, cli.stderr)
	}
	// without a failure it exits 0; not a terminal: a line per server and the summary
	cli = runCLI(t, dir, "", "servers", "restart", "--match", "fx-0*", "--wait")
	if cli.code != 0 || strings.Count(cli.stdout, " ready\n") != 9 || !strings.Contains(cli.stdout, "9 ready, 0 failed") {
		t.Fatalf("--match --wait: exit %d\n%s\n%s", cli.code, cli.stdout, cli.stderr)
	}

	// on a terminal (script gives it a pseudo-terminal): the progress line redrawn with \r
	line := fmt.Sprintf("%s --data-dir %s servers restart --all --timeout 60s", filepath.Join(binaries(t), "mcpproxy"), dir)
	out, err := exec.Command("script", "-qec", line, "/dev/null").CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("script: %v\n%s", err, out)
	}
	text := string(out)
	if !strings.Contains(text, "\r19/20 ready, 1 failed") || !strings.Contains(text, "broken") || ee == nil {
		t.Fatalf("terminal progress (err %v):\n%q", err, text)
	}
}
