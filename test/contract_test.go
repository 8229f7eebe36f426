package test

// Contract tests of oas/swagger.yaml: the spec is a valid OpenAPI 3.1 document that lints
// clean; its paths and the daemon's routes are the same set; every documented operation,
// exercised against a real daemon through the validating transport, answers as documented;
// and the validator itself catches the mistakes it is there to catch.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/oas"
)

// TestContractSpecIsOpenAPI31 loads the spec the way the validator does: it parses as
// OpenAPI 3.1, validates (examples included) and builds a router.
func TestContractSpecIsOpenAPI31(t *testing.T) {
	spec := loadSpec(t)
	if got := spec.doc.OpenAPI; got != "3.1.0" {
		t.Fatalf("openapi = %q, want 3.1.0", got)
	}
	for _, name := range []string{"ApiKeyHeader", "BearerAuth", "ApiKeyQuery"} {
		if spec.doc.Components.SecuritySchemes[name] == nil {
			t.Errorf("security scheme %s is missing", name)
		}
	}
}

// TestContractRedoclyLint runs the redocly linter from test/node_modules on the spec with
// oas/redocly.yaml (recommended-strict: every warning is an error).
func TestContractRedoclyLint(t *testing.T) {
	bin := filepath.Join(repoRoot(), "test", "node_modules", ".bin")
	redocly := filepath.Join(bin, "redocly")
	if _, err := os.Stat(redocly); err != nil {
		t.Fatalf("@redocly/cli is not installed (run npm ci in test/): %v", err)
	}
	cmd := exec.Command(redocly, "lint", "--config", "oas/redocly.yaml", "oas/swagger.yaml")
	cmd.Dir = repoRoot()
	// The .bin scripts start with "#!/usr/bin/env node": the node of test/node_modules
	// comes first, the machine's after it.
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redocly lint failed: %v\n%s", err, out)
	}
}

// TestContractRoutesMatchSpec walks gin's routes of a running daemon: every route must be a
// documented operation and every documented operation a route. An Any route (gin registers
// all nine methods) counts as documented when the spec has the path with POST, as the MCP
// transport's routes are.
func TestContractRoutesMatchSpec(t *testing.T) {
	spec := loadSpec(t)
	p := startProxy(t, servers())

	documented := map[specRoute]bool{}
	for _, op := range spec.operations() {
		documented[op] = true
	}
	methodsOf := map[string][]string{}
	for _, r := range p.D.HTTP.Engine().Routes() {
		path := specPath(r.Path)
		methodsOf[path] = append(methodsOf[path], r.Method)
	}
	served := map[specRoute]bool{}
	var problems []string
	for path, methods := range methodsOf {
		if isAny(methods) {
			for _, m := range methods {
				served[specRoute{m, path}] = true
			}
			if !documented[specRoute{http.MethodPost, path}] {
				problems = append(problems, fmt.Sprintf("route ANY %s: the spec has no POST %s", path, path))
			}
			continue
		}
		for _, m := range methods {
			served[specRoute{m, path}] = true
			if !documented[specRoute{m, path}] {
				problems = append(problems, fmt.Sprintf("route %s %s is not in the spec", m, path))
			}
		}
	}
	for op := range documented {
		if !served[op] {
			problems = append(problems, fmt.Sprintf("spec operation %s %s has no route", op.Method, op.Path))
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
	if len(documented) < 40 {
		t.Errorf("only %d documented operations; the spec looks truncated", len(documented))
	}
}

func isAny(methods []string) bool {
	for _, m := range anyMethods {
		if !slices.Contains(methods, m) {
			return false
		}
	}
	return true
}

// recordingTB stands in for the test when the transport is tested itself: it keeps the
// failures instead of failing.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordingTB) failures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// goodServer is a Server object as the spec wants it.
func goodServer() map[string]any {
	return map[string]any{
		"name": "fx", "protocol": "stdio", "enabled": true, "connected": true, "quarantined": false,
		"tools_count": 3, "tools_awaiting_review": 0, "state": "ready", "last_error": "", "retry_count": 0,
		"connected_at": "2025-01-02T15:04:05Z", "command": "fixture", "args": []string{"--name", "fx"},
		"isolated": false,
	}
}

// TestContractValidatorCatchesMismatches points the validating transport at a fake daemon
// that answers each request in a scripted way, some right and some wrong, and checks that
// exactly the wrong ones are reported: the validator is known to work, not just to be quiet.
func TestContractValidatorCatchesMismatches(t *testing.T) {
	without := func(m map[string]any, key string) map[string]any { delete(m, key); return m }
	with := func(m map[string]any, key string, v any) map[string]any { m[key] = v; return m }
	envelope := map[string]any{"error": "no server", "code": "NOT_FOUND"}

	cases := []struct {
		name    string
		method  string
		path    string
		body    string
		status  int
		ctype   string
		answer  any    // JSON-encoded unless a string
		wantErr string // "" means no failure may be reported
	}{
		{name: "good server", method: "GET", path: "/api/v1/servers/fx", status: 200, answer: map[string]any{"server": goodServer()}},
		{name: "server without name", method: "GET", path: "/api/v1/servers/fx", status: 200,
			answer: map[string]any{"server": without(goodServer(), "name")}, wantErr: "name"},
		{name: "tools_count of the wrong type", method: "GET", path: "/api/v1/servers/fx", status: 200,
			answer: map[string]any{"server": with(goodServer(), "tools_count", "3")}, wantErr: "tools_count"},
		{name: "state outside its enum", method: "GET", path: "/api/v1/servers/fx", status: 200,
			answer: map[string]any{"server": with(goodServer(), "state", "sleeping")}, wantErr: "state"},
		{name: "undocumented field (a leaked env)", method: "GET", path: "/api/v1/servers/fx", status: 200,
			answer: map[string]any{"server": with(goodServer(), "env", map[string]string{"TOKEN": "x"})}, wantErr: "env"},
		{name: "connected_at null is fine", method: "GET", path: "/api/v1/servers/fx", status: 200,
			answer: map[string]any{"server": with(goodServer(), "connected_at", nil)}},
		{name: "undocumented status", method: "GET", path: "/api/v1/servers/fx", status: http.StatusTeapot,
			answer: envelope, wantErr: "418"},
		{name: "documented 404 with the envelope", method: "GET", path: "/api/v1/servers/nope", status: 404, answer: envelope},
		{name: "404 without the envelope", method: "GET", path: "/api/v1/servers/nope", status: 404,
			answer: map[string]any{"message": "not found"}, wantErr: "404"},
		{name: "error code outside the table", method: "GET", path: "/api/v1/servers/nope", status: 404,
			answer: map[string]any{"error": "x", "code": "MISSING"}, wantErr: "code"},
		{name: "invalid request accepted", method: "POST", path: "/api/v1/servers/fx/quarantine", body: `{"quarantined":"yes"}`,
			status: 200, answer: map[string]any{"server": goodServer()}, wantErr: "accepted a request"},
		{name: "invalid request refused", method: "POST", path: "/api/v1/servers/fx/quarantine", body: `{"quarantined":"yes"}`,
			status: 400, answer: map[string]any{"error": "bad body", "code": "INVALID_ARGUMENT"}},
		{name: "body that is not JSON accepted", method: "POST", path: "/api/v1/servers/fx/quarantine", body: `{not json`,
			status: 200, answer: map[string]any{"server": goodServer()}, wantErr: "accepted a request"},
		{name: "config validate reports any body", method: "POST", path: "/api/v1/config/validate", body: `{not json`,
			status: 200, answer: map[string]any{"valid": false, "errors": []any{map[string]any{"field": "(root)", "message": "not JSON"}}}},
		{name: "limit out of range accepted", method: "GET", path: "/api/v1/tools?limit=0", status: 200,
			answer: map[string]any{"tools": []any{}, "total": 0}, wantErr: "accepted a request"},
		{name: "undocumented route served", method: "GET", path: "/api/v1/secret-stuff", status: 200,
			answer: map[string]any{"ok": true}, wantErr: "not in the spec"},
		{name: "unknown route refused", method: "GET", path: "/api/v1/secret-stuff", status: 404, answer: envelope},
		{name: "wrong method refused", method: "DELETE", path: "/api/v1/status", status: 405,
			answer: map[string]any{"error": "method DELETE not allowed", "code": "METHOD_NOT_ALLOWED"}},
		{name: "event stream with another content type", method: "GET", path: "/events", status: 200,
			ctype: "text/html", answer: "<p>hi</p>", wantErr: "Content-Type"},
		{name: "event stream", method: "GET", path: "/events", status: 200, ctype: "text/event-stream",
			answer: "id: 1\nevent: tools.indexed\ndata: {}\n\n"},
		{name: "bulk result without errors", method: "POST", path: "/api/v1/servers/restart_all", status: 200,
			answer: map[string]any{"total": 1, "successful": 1, "failed": 0, "skipped": 0, "operation": "op_1"}, wantErr: "errors"},
		{name: "secret metadata carrying its value", method: "GET", path: "/api/v1/secrets/TOKEN", status: 200,
			answer: map[string]any{"secret": map[string]any{"name": "TOKEN", "created_at": "2025-01-02T15:04:05Z",
				"updated_at": "2025-01-02T15:04:05Z", "used_by": []string{}, "value": "hunter2"}}, wantErr: "value"},
	}

	var mu sync.Mutex
	var current int
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		c := cases[current]
		mu.Unlock()
		var data []byte
		if s, ok := c.answer.(string); ok {
			data = []byte(s)
		} else {
			data, _ = json.Marshal(c.answer)
		}
		ctype := c.ctype
		if ctype == "" {
			ctype = "application/json; charset=utf-8"
		}
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(c.status)
		_, _ = w.Write(data)
	}))
	t.Cleanup(fake.Close)

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			current = i
			mu.Unlock()
			rec := &recordingTB{TB: t}
			hc := &http.Client{Transport: validatingTransport(rec, nil), Timeout: 10 * time.Second}
			req, err := http.NewRequest(c.method, fake.URL+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			req.Header.Set("X-API-Key", "k")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = bytes.NewBuffer(nil).ReadFrom(resp.Body)
			resp.Body.Close()
			got := rec.failures()
			for _, f := range got {
				t.Logf("reported: %s", f)
			}
			switch {
			case c.wantErr == "" && len(got) > 0:
				t.Errorf("want no contract failure, got %q", got)
			case c.wantErr != "" && len(got) == 0:
				t.Errorf("want a contract failure about %q, got none", c.wantErr)
			case c.wantErr != "" && !strings.Contains(strings.Join(got, "\n"), c.wantErr):
				t.Errorf("want a contract failure about %q, got %q", c.wantErr, got)
			}
		})
	}
}

// TestContractTransportPassesBodiesThrough checks that the transport hands the test the
// same bytes the daemon sent (it reads them to validate) and the daemon the same bytes the
// test sent.
func TestContractTransportPassesBodiesThrough(t *testing.T) {
	var gotBody []byte
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotBody, _ = readAll(r)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"server":` + mustJSON(t, goodServer()) + `}`))
	}))
	t.Cleanup(fake.Close)
	rec := &recordingTB{TB: t}
	hc := &http.Client{Transport: validatingTransport(rec, nil)}
	req, _ := http.NewRequest("POST", fake.URL+"/api/v1/servers/fx/quarantine", strings.NewReader(`{"quarantined":true}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer k")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := readAllResp(resp)
	if string(gotBody) != `{"quarantined":true}` {
		t.Errorf("daemon got body %q", gotBody)
	}
	if !strings.Contains(string(data), `"name":"fx"`) {
		t.Errorf("test got body %q", data)
	}
	if f := rec.failures(); len(f) > 0 {
		t.Errorf("unexpected failures: %q", f)
	}
}

func readAll(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

func readAllResp(r *http.Response) ([]byte, error) {
	defer r.Body.Close()
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestContractSwaggerUI checks /swagger/: the page, its initializer (pointing at our
// document, no online validator), every asset the page loads, and the document itself,
// byte for byte oas/swagger.yaml; all without a key and with nothing from another origin.
func TestContractSwaggerUI(t *testing.T) {
	p := startProxy(t, servers())
	p.client.Transport = validatingTransport(t, nil)
	open := map[string]string{} // no key
	code, page := p.doWith("GET", "/swagger/", nil, nil, open)
	if code != 200 || !strings.Contains(string(page), `id="swagger-ui"`) {
		t.Fatalf("GET /swagger/: %d %s", code, page)
	}
	if bytes.Contains(page, []byte("http://")) || bytes.Contains(page, []byte("https://")) {
		t.Errorf("the page refers to another origin:\n%s", page)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllSubmatch(page, -1)
	if len(refs) < 4 {
		t.Fatalf("the page loads %d files, want the bundle, preset, initializer and styles", len(refs))
	}
	for _, m := range refs {
		name := string(m[1])
		code, body := p.doWith("GET", "/swagger/"+name, nil, nil, open)
		if code != 200 || len(body) == 0 {
			t.Errorf("GET /swagger/%s: %d (%d bytes)", name, code, len(body))
		}
	}
	code, init := p.doWith("GET", "/swagger/swagger-initializer.js", nil, nil, open)
	if code != 200 || !strings.Contains(string(init), `url: "swagger.yaml"`) || !strings.Contains(string(init), "validatorUrl: null") ||
		strings.Contains(string(init), "petstore") {
		t.Errorf("initializer: %d %s", code, init)
	}
	code, doc := p.doWith("GET", "/swagger/swagger.yaml", nil, nil, open)
	if code != 200 || !bytes.Equal(doc, oas.Spec) {
		t.Errorf("GET /swagger/swagger.yaml: %d, %d bytes, want oas.Spec (%d bytes)", code, len(doc), len(oas.Spec))
	}
	var env struct{ Code string }
	if code, body := p.doWith("GET", "/swagger/nope.js", nil, &env, open); code != 404 || env.Code != "NOT_FOUND" {
		t.Errorf("GET /swagger/nope.js: %d %s", code, body)
	}
	// /swagger without the slash redirects to the page.
	resp, err := p.client.Get(p.URL + "/swagger")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/swagger/" {
		t.Errorf("GET /swagger ended at %s with %d", resp.Request.URL.Path, resp.StatusCode)
	}
	// The Host guard covers the documentation too.
	if code, body := p.doWith("GET", "/swagger/", nil, nil, map[string]string{"Host": "evil.example.com"}); code != 403 {
		t.Errorf("GET /swagger/ with a foreign Host: %d %s", code, body)
	}
}

// call is one request of TestContractExerciseEveryOperation and the status it must get.
type call struct {
	method, path string
	body         any
	headers      map[string]string // nil: the API key header
	want         int
}

// TestContractExerciseEveryOperation runs every documented operation against a real daemon
// (a stdio fixture upstream, an MCP session, a secret) through the validating transport, on
// success and error paths, and checks that each operation was exercised.
func TestContractExerciseEveryOperation(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "fx"), stdioFixture(t, "off")))
	ct := validatingTransport(t, nil).(*contractTransport)
	p.client.Transport = ct
	p.waitState("fx", 20*time.Second, actors.StateReady)
	p.waitState("off", 20*time.Second, actors.StateReady)

	key := map[string]string{"X-API-Key": p.Key}
	open := map[string]string{}
	run := func(calls ...call) {
		t.Helper()
		for _, c := range calls {
			h := c.headers
			if h == nil {
				h = key
			}
			if code, body := p.doWith(c.method, c.path, c.body, nil, h); code != c.want {
				t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, code, c.want, body)
			}
		}
	}

	run(
		call{"GET", "/healthz", nil, open, 200},
		call{"GET", "/readyz", nil, open, 200},
		call{"GET", "/api/v1/status", nil, nil, 200},
		call{"GET", "/api/v1/status", nil, map[string]string{"Authorization": "Bearer " + p.Key}, 200},
		call{"GET", "/api/v1/status?apikey=" + p.Key, nil, open, 200},
		call{"GET", "/api/v1/status", nil, open, 401},
		call{"GET", "/api/v1/status", nil, map[string]string{"X-API-Key": "wrong"}, 401},
		call{"GET", "/api/v1/status", nil, map[string]string{"X-API-Key": p.Key, "Host": "evil.example.com"}, 403},
		call{"DELETE", "/api/v1/status", nil, nil, 405},
		call{"GET", "/api/v1/nope", nil, nil, 404},
		call{"GET", "/api/v1/servers", nil, nil, 200},
		call{"GET", "/api/v1/servers/fx", nil, nil, 200},
		call{"GET", "/api/v1/servers/nope", nil, nil, 404},
		call{"GET", "/api/v1/servers/fx/tools", nil, nil, 200},
		call{"GET", "/api/v1/servers/nope/tools", nil, nil, 404},
		call{"GET", "/api/v1/tools", nil, nil, 200},
		call{"GET", "/api/v1/tools?q=echo&limit=3", nil, nil, 200},
		call{"GET", "/api/v1/tools?limit=0", nil, nil, 400},
		call{"POST", "/api/v1/servers/off/disable", nil, nil, 200},
		call{"POST", "/api/v1/servers/off/disable", nil, nil, 200},
		call{"POST", "/api/v1/servers/off/restart", nil, nil, 409},
		call{"POST", "/api/v1/servers/nope/enable", nil, nil, 404},
		call{"POST", "/api/v1/servers/fx/quarantine", map[string]any{"quarantined": true}, nil, 200},
		call{"POST", "/api/v1/servers/fx/tools/approve", map[string]any{"all": true}, nil, 409},
		call{"POST", "/api/v1/servers/fx/quarantine", map[string]any{"quarantined": false}, nil, 200},
		// Tool-level trust: approve (all, by name, unknown names, bad bodies), the switch.
		call{"POST", "/api/v1/servers/fx/tools/approve", map[string]any{"all": true}, nil, 200},
		call{"POST", "/api/v1/servers/fx/tools/approve", map[string]any{"tools": []string{"echo"}}, nil, 200},
		call{"POST", "/api/v1/servers/fx/tools/approve", map[string]any{"tools": []string{"no_such_tool"}}, nil, 400},
		call{"POST", "/api/v1/servers/fx/tools/approve", map[string]any{}, nil, 400},
		call{"POST", "/api/v1/servers/fx/tools/approve", map[string]any{"all": true, "tools": []string{"echo"}}, nil, 400},
		call{"POST", "/api/v1/servers/fx/tools/approve", map[string]any{"every": true}, nil, 400},
		call{"POST", "/api/v1/servers/nope/tools/approve", map[string]any{"all": true}, nil, 404},
		call{"POST", "/api/v1/servers/fx/tools/echo/disable", nil, nil, 200},
		call{"POST", "/api/v1/servers/fx/tools/echo/enable", nil, nil, 200},
		call{"POST", "/api/v1/servers/fx/tools/no_such_tool/disable", nil, nil, 404},
		call{"POST", "/api/v1/servers/nope/tools/echo/enable", nil, nil, 404},
		call{"POST", "/api/v1/servers/fx/quarantine", "not json", nil, 400},
		call{"POST", "/api/v1/servers/fx/quarantine", map[string]any{"quarantined": true, "extra": 1}, nil, 400},
		call{"POST", "/api/v1/servers/fx/quarantine", strings.Repeat(" ", 1<<20+10), nil, 413},
		call{"POST", "/api/v1/servers/fx/restart", nil, nil, 200},
		call{"POST", "/api/v1/servers/off/enable", nil, nil, 200},
		call{"POST", "/api/v1/servers/reconnect", nil, nil, 200},
		call{"POST", "/api/v1/servers/disable_all", nil, nil, 200},
		call{"POST", "/api/v1/servers/enable_all", nil, nil, 200},
		call{"POST", "/api/v1/servers/restart_all", nil, nil, 200},
		// OAuth logins: a stdio server cannot log in; a forged state changes nothing (the
		// successful paths are in oauth_test.go).
		call{"POST", "/api/v1/servers/fx/login", nil, nil, 400},
		call{"POST", "/api/v1/servers/nope/login", nil, nil, 404},
		call{"POST", "/api/v1/servers/nope/logout", nil, nil, 404},
		call{"GET", "/oauth/callback?state=forged&code=x", nil, open, 400},
	)
	p.waitState("fx", 20*time.Second, actors.StateReady)

	// Bulk operations over a selection, and their progress.
	var bres actors.BulkResult
	if code, body := p.do("POST", "/api/v1/servers/restart_all", map[string]any{"servers": []string{"fx"}, "match": "f*", "state": []string{"ready"}}, &bres); code != 200 || bres.Operation == "" {
		t.Fatalf("restart_all over a selection: %d %s", code, body)
	}
	run(
		call{"POST", "/api/v1/servers/reconnect", map[string]any{"servers": []string{"nope"}}, nil, 404},
		call{"POST", "/api/v1/servers/enable_all", map[string]any{"state": []string{"sleepy"}}, nil, 400},
		call{"POST", "/api/v1/servers/disable_all", map[string]any{"match": "none-*"}, nil, 200},
		call{"GET", "/api/v1/operations/" + bres.Operation, nil, nil, 200},
		call{"GET", "/api/v1/operations/op_nope", nil, nil, 404},
	)
	p.waitState("fx", 20*time.Second, actors.StateReady)

	// Managing servers: add (good, duplicate, bad), patch, logs, import, delete.
	added := map[string]any{"name": "added", "command": fixtureBin(t), "args": []string{"--name", "added"}}
	run(
		call{"POST", "/api/v1/servers", added, nil, 201},
		call{"POST", "/api/v1/servers", added, nil, 409},
		call{"POST", "/api/v1/servers", map[string]any{"name": "x"}, nil, 400},
		call{"PATCH", "/api/v1/servers/added", map[string]any{"env": map[string]string{"A": "1"}}, nil, 200},
		call{"PATCH", "/api/v1/servers/added", map[string]any{"name": "renamed"}, nil, 400},
		call{"PATCH", "/api/v1/servers/nope", map[string]any{}, nil, 404},
		call{"GET", "/api/v1/servers/fx/logs", nil, nil, 200},
		call{"GET", "/api/v1/servers/fx/logs?tail=nope", nil, nil, 400},
		call{"GET", "/api/v1/servers/nope/logs", nil, nil, 404},
		call{"POST", "/api/v1/servers/import?format=cursor", `{"mcpServers":{"imported":{"command":"true"},"added":{"command":"true"}}}`, nil, 200},
		call{"POST", "/api/v1/servers/import?format=codex", `not toml [`, nil, 400},
		call{"DELETE", "/api/v1/servers/imported", nil, nil, 200},
		call{"DELETE", "/api/v1/servers/added", nil, nil, 200},
		call{"DELETE", "/api/v1/servers/added", nil, nil, 404},
	)

	// Config: read, validate (good and bad), apply the redacted config back ("********"
	// keeps the key), apply a bad one.
	var got struct {
		Config json.RawMessage `json:"config"`
	}
	if code, body := p.doWith("GET", "/api/v1/config", nil, &got, key); code != 200 {
		t.Fatalf("GET config: %d %s", code, body)
	}
	run(
		call{"POST", "/api/v1/config/validate", got.Config, nil, 200},
		call{"POST", "/api/v1/config/validate", `{"mcpServers":[{"name":"x","bogus":1}]}`, nil, 200},
		call{"POST", "/api/v1/config/apply", got.Config, nil, 200},
		call{"POST", "/api/v1/config/apply", `{"listen":"nonsense","mcpServers":[]}`, nil, 400},
		call{"POST", "/api/v1/config/apply", `{"mcpServers":[{"name":"x","bogus":1}]}`, nil, 400},
	)

	// Secrets.
	run(
		call{"PUT", "/api/v1/secrets/CONTRACT_TOKEN", map[string]any{"value": "s3cret"}, nil, 201},
		call{"PUT", "/api/v1/secrets/CONTRACT_TOKEN", map[string]any{"value": "s3cret2"}, nil, 200},
		call{"PUT", "/api/v1/secrets/CONTRACT_TOKEN", map[string]any{}, nil, 400},
		call{"GET", "/api/v1/secrets", nil, nil, 200},
		call{"GET", "/api/v1/secrets/CONTRACT_TOKEN", nil, nil, 200},
		call{"GET", "/api/v1/secrets/bad%20name", nil, nil, 400},
		call{"DELETE", "/api/v1/secrets/CONTRACT_TOKEN", nil, nil, 204},
		call{"GET", "/api/v1/secrets/CONTRACT_TOKEN", nil, nil, 404},
		call{"DELETE", "/api/v1/secrets/CONTRACT_TOKEN", nil, nil, 404},
	)

	// Agent tokens: created (answered once), listed, refused on REST and outside their
	// scope, revoked.
	var created actors.CreatedToken
	if code, body := p.doWith("POST", "/api/v1/tokens", map[string]any{"name": "contract", "servers": []string{"fx"}, "tools": []string{"fx:echo"}}, &created, key); code != 201 {
		t.Fatalf("POST tokens: %d %s", code, body)
	}
	agent := map[string]string{"Authorization": "Bearer " + created.Token}
	run(
		call{"POST", "/api/v1/tokens", map[string]any{"name": "contract", "servers": []string{"fx"}}, nil, 409},
		call{"POST", "/api/v1/tokens", map[string]any{"name": "bad name", "servers": []string{}}, nil, 400},
		call{"GET", "/api/v1/tokens", nil, nil, 200},
		call{"GET", "/api/v1/tokens", nil, agent, 403},
		call{"GET", "/api/v1/status", nil, agent, 403},
		call{"POST", "/mcp/server/off", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, agent, 403},
		call{"DELETE", "/api/v1/tokens/contract", nil, nil, 204},
		call{"DELETE", "/api/v1/tokens/contract", nil, nil, 404},
		call{"GET", "/api/v1/status", nil, agent, 401},
		call{"POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, agent, 401},
	)

	// Operations.
	run(
		call{"GET", "/api/v1/info", nil, nil, 200},
		call{"GET", "/api/v1/diagnostics", nil, nil, 200},
		call{"GET", "/api/v1/doctor", nil, nil, 200},
		call{"GET", "/api/v1/docker/status", nil, nil, 200},
	)

	// Pages.
	code, page := p.doWith("GET", "/", nil, nil, open)
	if code != 200 {
		t.Fatalf("GET /: %d", code)
	}
	run(call{"HEAD", "/", nil, open, 200})
	for _, m := range regexp.MustCompile(`(?:src|href)="(/dashboard/[^"]+)"`).FindAllSubmatch(page, -1) {
		run(call{"GET", string(m[1]), nil, open, 200}, call{"HEAD", string(m[1]), nil, open, 200})
	}
	run(
		call{"GET", "/dashboard/nope.js", nil, open, 404},
		call{"GET", "/swagger/", nil, open, 200},
		call{"GET", "/swagger/swagger.yaml", nil, open, 200},
		call{"GET", "/swagger/swagger-ui.css", nil, open, 200},
	)

	// Events: headers, a stream opened and closed, a bad Last-Event-ID.
	run(
		call{"HEAD", "/events", nil, nil, 200},
		call{"GET", "/events?lastEventId=abc", nil, nil, 400},
		call{"GET", "/events", nil, open, 401},
	)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, _ := http.NewRequestWithContext(ctx, "GET", p.URL+"/events?apikey="+p.Key, nil)
	req.Header.Set("Last-Event-ID", "0")
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Errorf("GET /events: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	cancel()
	resp.Body.Close()

	// MCP: a session on /mcp through the validating transport, listed by the session API.
	sessionID := mcpSession(t, p, ct, "/mcp")
	run(
		call{"GET", "/api/v1/sessions", nil, nil, 200},
		call{"GET", "/api/v1/sessions/" + sessionID, nil, nil, 200},
		call{"GET", "/api/v1/sessions/nope", nil, nil, 404},
		call{"POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, open, 401},
		call{"GET", "/mcp", nil, nil, 400},
		call{"GET", "/mcp/server/fx", nil, nil, 400},
		call{"POST", "/mcp/server/nope", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil, 404},
		call{"POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, map[string]string{"X-API-Key": p.Key, "Mcp-Session-Id": "nope"}, 404},
	)
	mcpSession(t, p, ct, "/mcp/server/fx")
	mcpSession(t, p, ct, "/mcp/all")
	run(call{"GET", "/mcp/all", nil, nil, 400})

	// Activity: a call through /mcp makes a record; list, get, export; metrics.
	c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "contract")
	viaProxy(t, c, "fx:echo", map[string]any{"text": "hi"})
	var firstID uint64
	waitFor(t, 10*time.Second, "an activity record", func() bool {
		var page struct {
			Records []struct {
				ID uint64 `json:"id"`
			} `json:"records"`
		}
		p.do("GET", "/api/v1/activity?limit=1", nil, &page)
		if len(page.Records) > 0 {
			firstID = page.Records[0].ID
		}
		return firstID > 0
	})
	run(
		call{"GET", "/api/v1/activity", nil, nil, 200},
		call{"GET", "/api/v1/activity?server=fx&status=ok&limit=5", nil, nil, 200},
		call{"GET", "/api/v1/activity?limit=0", nil, nil, 400},
		call{"GET", "/api/v1/activity?status=fine", nil, nil, 400},
		call{"GET", "/api/v1/activity?bogus=1", nil, nil, 400},
		call{"GET", "/api/v1/activity?since=yesterday", nil, nil, 400},
		call{"GET", "/api/v1/activity", nil, open, 401},
		call{"GET", fmt.Sprintf("/api/v1/activity/%d", firstID), nil, nil, 200},
		call{"GET", "/api/v1/activity/99999999", nil, nil, 404},
		call{"GET", "/api/v1/activity/abc", nil, nil, 400},
		call{"GET", "/api/v1/activity/export", nil, nil, 200},
		call{"GET", "/api/v1/activity/export?format=csv&server=fx", nil, nil, 200},
		call{"GET", "/api/v1/activity/export?format=xml", nil, nil, 400},
		call{"GET", "/metrics", nil, nil, 200},
		call{"GET", "/metrics", nil, open, 401},
	)

	// Every operation must have been exercised.
	seen := map[string]bool{}
	statuses := map[string][]int{}
	for _, ex := range ct.Exchanges() {
		seen[ex.Operation] = true
		if !slices.Contains(statuses[ex.Operation], ex.Status) {
			statuses[ex.Operation] = append(statuses[ex.Operation], ex.Status)
		}
	}
	t.Logf("%d exchanges validated; statuses by operation: %v", len(ct.Exchanges()), statuses)
	var missing []string
	for path, item := range loadSpec(t).doc.Paths.Map() {
		for method, op := range item.Operations() {
			if !seen[op.OperationID] {
				missing = append(missing, fmt.Sprintf("%s %s (%s)", method, path, op.OperationID))
			}
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("operation not exercised: %s", m)
	}
}

// mcpSession opens an MCP session on endpoint with mark3labs/mcp-go's client over the
// validating transport rt, lists the tools (and the prompts, resources and templates where
// the endpoint offers them), and closes it (DELETE). It returns the session id.
func mcpSession(t *testing.T, p *proxy, rt http.RoundTripper, endpoint string) string {
	t.Helper()
	hc := &http.Client{Transport: rt, Timeout: 30 * time.Second}
	// The key goes in the URL: mcp-go's Close sends its DELETE without the custom headers.
	cli, err := client.NewStreamableHttpClient(p.URL+endpoint+"?apikey="+p.Key, transport.WithHTTPBasicClient(hc),
		transport.WithContinuousListening())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cli.Start(ctx); err != nil {
		t.Fatalf("%s: start: %v", endpoint, err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "contract-test", Version: "1.0.0"}
	if _, err := cli.Initialize(ctx, init); err != nil {
		t.Fatalf("%s: initialize: %v", endpoint, err)
	}
	if _, err := cli.ListTools(ctx, mcp.ListToolsRequest{}); err != nil {
		t.Fatalf("%s: tools/list: %v", endpoint, err)
	}
	caps := cli.GetServerCapabilities()
	if endpoint == "/mcp" || endpoint == "/mcp/all" {
		if caps.Prompts == nil || caps.Resources == nil || !caps.Resources.Subscribe {
			t.Errorf("%s: capabilities lack prompts or resources with subscribe: %+v", endpoint, caps)
		}
	}
	if caps.Prompts != nil {
		if _, err := cli.ListPrompts(ctx, mcp.ListPromptsRequest{}); err != nil {
			t.Errorf("%s: prompts/list: %v", endpoint, err)
		}
	}
	if caps.Resources != nil {
		if _, err := cli.ListResources(ctx, mcp.ListResourcesRequest{}); err != nil {
			t.Errorf("%s: resources/list: %v", endpoint, err)
		}
		if _, err := cli.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{}); err != nil {
			t.Errorf("%s: resources/templates/list: %v", endpoint, err)
		}
	}
	id := cli.GetSessionId()
	if err := cli.Close(); err != nil {
		t.Errorf("%s: close: %v", endpoint, err)
	}
	return id
}
