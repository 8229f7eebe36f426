package test

// End-to-end tests of slow and unauthenticated clients: a request is authenticated before
// its body is read, a refused request's connection is closed rather than drained, a body
// that does not arrive within the read bound is cut, and the bound does not cut /events or
// MCP streams.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/cmd/mcpproxy/daemon"
)

// rawRequest opens a TCP connection to the proxy and writes head (a request line and
// header lines, without the empty line that ends them) and then body, and nothing more.
func rawRequest(t testing.TB, p *proxy, head, body string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(p.URL, "http://"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head+"\r\n\r\n"+body); err != nil {
		t.Fatal(err)
	}
	return c
}

// answerThenClose reads one response from c and then on until the server closes the
// connection, all within a bounded wait. It returns the response (its body read) and an
// error when the answer or the close did not come in time.
func answerThenClose(c net.Conn, within time.Duration) (*http.Response, []byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(within))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("no answer: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp, nil, fmt.Errorf("reading the answer's body: %w", err)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return resp, body, fmt.Errorf("the server kept the connection open for %s after answering", within)
		}
		return resp, body, fmt.Errorf("after the answer: %v, want the server to close the connection", err)
	}
	return resp, body, nil
}

// TestUnauthenticatedBodyRefusedAtOnce opens 200 connections without the API key, each
// announcing a body of 200,000 bytes and sending none of it, to keyed REST routes, the MCP
// endpoints, an unknown route and (with a foreign Host) the host guard. Each must be
// answered at once (401 on keyed routes) with Connection: close, and the server must close
// the connection instead of waiting for the body. Before, no answer came at all: the
// server waited to discard the body, and the connections stayed open for good.
func TestUnauthenticatedBodyRefusedAtOnce(t *testing.T) {
	p := startProxy(t, servers())
	host := strings.TrimPrefix(p.URL, "http://")
	cases := []struct {
		method, path, host string
		want               int
	}{
		{"POST", "/api/v1/config/apply", host, 401},
		{"POST", "/api/v1/servers/x/enable", host, 401},
		{"PUT", "/api/v1/secrets/x", host, 401},
		{"GET", "/api/v1/status", host, 401},
		{"POST", "/mcp", host, 401},
		{"POST", "/mcp/server/x", host, 401},
		{"POST", "/no/such/route", host, 404},
		{"POST", "/api/v1/config/apply", "evil.example", 403},
	}
	const n = 200
	conns := make([]net.Conn, n)
	for i := range conns {
		tc := cases[i%len(cases)]
		conns[i] = rawRequest(t, p, fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 200000", tc.method, tc.path, tc.host), "")
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, c := range conns {
		wg.Go(func() {
			tc := cases[i%len(cases)]
			resp, body, err := answerThenClose(c, 15*time.Second)
			switch {
			case err != nil:
				errs[i] = err
			case resp.StatusCode != tc.want:
				errs[i] = fmt.Errorf("status %d %s, want %d", resp.StatusCode, body, tc.want)
			case !resp.Close:
				errs[i] = fmt.Errorf("no Connection: close in the %d answer", resp.StatusCode)
			}
			if errs[i] != nil {
				errs[i] = fmt.Errorf("%s %s (Host %s): %w", tc.method, tc.path, tc.host, errs[i])
			}
		})
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			if failed < 5 {
				t.Error(err)
			}
			failed++
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d connections were not refused and closed", failed, n)
	}
}

// TestSlowBodyCutAfterBound sends a request with the key that announces 200,000 bytes and
// sends a few: once the read bound (here 500 ms) has passed, the REST API answers 408
// REQUEST_TIMEOUT, and so does the MCP endpoint, and the server closes both
// connections.
func TestSlowBodyCutAfterBound(t *testing.T) {
	p := startProxy(t, servers(), func(o *daemon.Options) { o.ReadTimeout = 500 * time.Millisecond })
	host := strings.TrimPrefix(p.URL, "http://")
	head := func(path string) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nX-API-Key: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 200000", path, host, p.Key)
	}
	rest := rawRequest(t, p, head("/api/v1/config/apply"), `{"mcpServers": [`)
	mcp := rawRequest(t, p, head("/mcp"), `{"jsonrpc": "2.0", `)

	resp, body, err := answerThenClose(rest, 15*time.Second)
	if err != nil {
		t.Fatalf("REST: %v", err)
	}
	var e struct{ Code string }
	_ = json.Unmarshal(body, &e)
	if resp.StatusCode != http.StatusRequestTimeout || e.Code != "REQUEST_TIMEOUT" || !resp.Close {
		t.Errorf("REST: %d %s (Connection: close %v), want 408 REQUEST_TIMEOUT and close", resp.StatusCode, body, resp.Close)
	}
	resp, body, err = answerThenClose(mcp, 15*time.Second)
	if err != nil {
		t.Fatalf("MCP: %v", err)
	}
	// /mcp reads its bodies with the same reader (mhttp.ReadBody), so it answers alike.
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "REQUEST_TIMEOUT") {
		t.Errorf("MCP: %d %s, want 408 REQUEST_TIMEOUT", resp.StatusCode, body)
	}
	// The daemon still serves a well-behaved client.
	if code, body := p.do("GET", "/api/v1/status", nil, nil); code != 200 {
		t.Errorf("status after the slow clients: %d %s", code, body)
	}
}

// TestStreamsOutliveReadBound runs the daemon with a read bound of 300 ms and checks that
// it cuts no stream: /events keeps delivering keepalives (every second) after the bound, so
// does an MCP GET stream (pings every second), and a tool call whose answer takes 1.5 s
// gets it. A read deadline in force while the handler runs would end the streams and
// cancel the call at 300 ms: net/http's check for a client gone away reads the connection
// during the response (see http/bodies.go).
func TestStreamsOutliveReadBound(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "fx")), func(o *daemon.Options) {
		o.ReadTimeout = 300 * time.Millisecond
		o.EventsKeepAlive = time.Second
		o.MCPHeartbeat = time.Second
	})
	p.waitState("fx", 30*time.Second, actors.StateReady)

	// waitLines reads r's lines until match has held twice (each more than the bound after
	// the stream opened), within a bounded wait.
	waitLines := func(what string, c net.Conn, r *bufio.Reader, match func(string) bool) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		seen := 0
		for seen < 2 {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: stream ended after %d of 2 keepalives: %v", what, seen, err)
			}
			if match(strings.TrimSpace(line)) {
				seen++
			}
		}
	}
	readHead := func(what string, c net.Conn) *bufio.Reader {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		r := bufio.NewReader(c)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("%s: %d %s", what, resp.StatusCode, b)
		}
		// The body is chunked; lines are read through the decoder.
		return bufio.NewReader(resp.Body)
	}
	host := strings.TrimPrefix(p.URL, "http://")

	events := rawRequest(t, p, fmt.Sprintf("GET /events HTTP/1.1\r\nHost: %s\r\nX-API-Key: %s\r\nAccept: text/event-stream", host, p.Key), "")
	er := readHead("/events", events)

	agent := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "streams")
	stream := rawRequest(t, p, fmt.Sprintf("GET /mcp HTTP/1.1\r\nHost: %s\r\nX-API-Key: %s\r\nAccept: text/event-stream\r\nMcp-Session-Id: %s", host, p.Key, agent.GetSessionId()), "")
	sr := readHead("MCP GET stream", stream)

	// A call whose answer comes after the bound.
	if res := viaProxy(t, agent, "fx:sleep", map[string]any{"ms": 1500}); res.IsError {
		t.Errorf("a 1.5 s call with a 300 ms read bound: %q", textOf(res))
	}
	waitLines("/events", events, er, func(l string) bool { return l == ": keepalive" })
	waitLines("MCP GET stream", stream, sr, func(l string) bool { return strings.HasPrefix(l, "data:") && strings.Contains(l, `"ping"`) })
}
