package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mcpproxy/mcpproxy/actors"
)

// sseEvent is one event as a raw client parses it off the wire.
type sseEvent struct {
	ID      string
	Name    string
	Data    string
	Comment string
	At      time.Time // when the blank line ending it arrived
}

// sseStream is one raw /events client: a TCP connection, the request written by hand,
// the response read with http.ReadResponse (which undoes the chunking) and the body
// parsed line by line with bufio. Events are collected without backpressure, so a test
// that looks at them late never makes the client a slow reader.
type sseStream struct {
	t      testing.TB
	conn   net.Conn
	Resp   *http.Response
	mu     sync.Mutex
	events []sseEvent
	err    error // set when the body ended
	notify chan struct{}
	done   chan struct{}
}

// openSSE connects to path (e.g. "/events?apikey=K") on the proxy with the given headers
// and returns once the response headers arrived. A non-200 response is returned with its
// body read and no reader started.
func openSSE(t testing.TB, p *proxy, path string, headers map[string]string) *sseStream {
	t.Helper()
	u, err := url.Parse(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	s := &sseStream{t: t, conn: conn, notify: make(chan struct{}, 1), done: make(chan struct{})}
	t.Cleanup(s.Close)
	req := writeSSERequest(t, conn, "GET", u.Host, path, headers)
	br := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("reading the response of GET %s: %v", path, err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	s.Resp = resp
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		close(s.done)
		return s
	}
	go s.read(resp.Body)
	return s
}

// writeSSERequest writes a GET or HEAD request by hand and returns its description for
// http.ReadResponse.
func writeSSERequest(t testing.TB, conn net.Conn, method, host, path string, headers map[string]string) *http.Request {
	t.Helper()
	var b strings.Builder
	hostHeader := host
	if h, ok := headers["Host"]; ok {
		hostHeader = h
	}
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n", method, path, hostHeader)
	for k, v := range headers {
		if k != "Host" {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatalf("writing the request: %v", err)
	}
	req, err := http.NewRequest(method, "http://"+host+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// read parses the event stream (WHATWG field rules: "name: value", one leading space
// removed, ':' starts a comment, a blank line ends an event).
func (s *sseStream) read(body io.Reader) {
	defer close(s.done)
	br := bufio.NewReaderSize(body, 64<<10)
	var cur sseEvent
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			s.wake()
			return
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if cur.ID != "" || cur.Name != "" || data != nil || cur.Comment != "" {
				cur.Data = strings.Join(data, "\n")
				cur.At = time.Now()
				s.mu.Lock()
				s.events = append(s.events, cur)
				s.mu.Unlock()
				s.wake()
			}
			cur, data = sseEvent{}, nil
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			cur.Comment = value
		case "id":
			cur.ID = value
		case "event":
			cur.Name = value
		case "data":
			data = append(data, value)
		}
	}
}

func (s *sseStream) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Close drops the connection and waits for the reader.
func (s *sseStream) Close() {
	_ = s.conn.Close()
	<-s.done
}

// Events returns the events (comments excluded) received so far.
func (s *sseStream) Events() []sseEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]sseEvent, 0, len(s.events))
	for _, e := range s.events {
		if e.Comment == "" || e.ID != "" {
			out = append(out, e)
		}
	}
	return out
}

// Comments returns the comment lines received so far.
func (s *sseStream) Comments() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.events {
		if e.Comment != "" {
			out = append(out, e.Comment)
		}
	}
	return out
}

// Ended reports whether the body ended, and how.
func (s *sseStream) Ended() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil, s.err
}

// waitEvents waits until cond holds for the events received so far and returns them.
func (s *sseStream) waitEvents(timeout time.Duration, what string, cond func([]sseEvent) bool) []sseEvent {
	s.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		evs := s.Events()
		if cond(evs) {
			return evs
		}
		if ended, err := s.Ended(); ended {
			s.t.Fatalf("stream ended (%v) while waiting for %s; got %d events", err, what, len(evs))
		}
		select {
		case <-s.notify:
		case <-deadline.C:
			s.t.Fatalf("timed out after %s waiting for %s; got %s", timeout, what, describeEvents(s.Events()))
		}
	}
}

// waitCount waits for at least n events.
func (s *sseStream) waitCount(n int, timeout time.Duration) []sseEvent {
	s.t.Helper()
	return s.waitEvents(timeout, fmt.Sprintf("%d events", n), func(e []sseEvent) bool { return len(e) >= n })
}

func describeEvents(evs []sseEvent) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d events:", len(evs))
	for i, e := range evs {
		if i == 20 {
			fmt.Fprintf(&b, " ...")
			break
		}
		d := e.Data
		if len(d) > 120 {
			d = d[:120] + "..."
		}
		fmt.Fprintf(&b, "\n  id=%s event=%s data=%s", e.ID, e.Name, d)
	}
	return b.String()
}

// eventID parses an event's id.
func eventID(t testing.TB, e sseEvent) uint64 {
	t.Helper()
	id, err := strconv.ParseUint(e.ID, 10, 64)
	if err != nil {
		t.Fatalf("event id %q is not a number: %v", e.ID, err)
	}
	return id
}

// stalledConn sends GET /events with a small receive buffer and never reads.
func stalledConn(t testing.TB, p *proxy) net.Conn {
	t.Helper()
	u, _ := url.Parse(p.URL)
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	writeSSERequest(t, conn, "GET", u.Host, "/events?apikey="+url.QueryEscape(p.Key), nil)
	return conn
}

// hubClient is the in-process daemon's hub API.
func (p *proxy) hubClient() *actors.HubClient {
	p.t.Helper()
	if p.D == nil {
		p.t.Fatal("hubClient needs an in-process daemon")
	}
	return actors.NewHubClient(p.D.System, p.D.Hub)
}

// internalSubscribers waits until the daemon's own subscription to the hub is up (the MCP
// endpoint follows servers.changed to keep /mcp/all's tool list current) and returns how
// many subscribers that is, so that tests counting /events clients can add it.
func (p *proxy) internalSubscribers() int {
	p.t.Helper()
	const own = 1
	waitFor(p.t, 10*time.Second, "the MCP endpoint's own hub subscription", func() bool { return p.hubStats().Subscribers == own })
	return own
}

// hubStats asks the hub for its counters, bounded.
func (p *proxy) hubStats() actors.HubStats {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := p.hubClient().Stats(ctx)
	if err != nil {
		p.t.Fatalf("hub stats: %v", err)
	}
	return st
}

// changed is the payload of servers.changed.
type changed struct {
	Reason string        `json:"reason"`
	Server actors.Server `json:"server"`
}

// decodeChanged parses a servers.changed event's data; ok is false for other events.
func decodeChanged(t testing.TB, e sseEvent) (changed, bool) {
	t.Helper()
	if e.Name != "servers.changed" {
		return changed{}, false
	}
	var c changed
	if err := json.Unmarshal([]byte(e.Data), &c); err != nil {
		t.Fatalf("servers.changed data %q: %v", e.Data, err)
	}
	return c, true
}

// keyHeader is the API key header of p.
func keyHeader(p *proxy) map[string]string { return map[string]string{"X-API-Key": p.Key} }

// disabledServer is a config entry that never starts, so flag changes on it make exactly
// one servers.changed each and nothing else.
func disabledServer(t testing.TB, name string) map[string]any {
	e := stdioFixture(t, name)
	e["enabled"] = false
	return e
}

// toggleQuarantine flips q's quarantine flag n times, one servers.changed each.
func toggleQuarantine(p *proxy, name string, n int) {
	p.t.Helper()
	q := p.server(name).Quarantined
	for range n {
		q = !q
		if code, body := p.do("POST", "/api/v1/servers/"+name+"/quarantine", map[string]bool{"quarantined": q}, nil); code != 200 {
			p.t.Fatalf("quarantine %s: %d %s", name, code, body)
		}
	}
}

// checkWire asserts that every event has an id, a name and JSON data, with ids strictly
// increasing.
func checkWire(t testing.TB, evs []sseEvent) {
	t.Helper()
	var last uint64
	for _, e := range evs {
		if e.ID == "" || e.Name == "" || !json.Valid([]byte(e.Data)) {
			t.Fatalf("event without id, name or JSON data: %+v", e)
		}
		id := eventID(t, e)
		if id <= last {
			t.Fatalf("ids not increasing: %d after %d", id, last)
		}
		last = id
	}
}

// sameEvents asserts that got equals want event by event (id, name, data).
func sameEvents(t testing.TB, got, want []sseEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %s\nwant %s", describeEvents(got), describeEvents(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID || got[i].Name != want[i].Name || got[i].Data != want[i].Data {
			t.Fatalf("event %d differs:\ngot  %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// TestEventsServerStates follows a disable and an enable of a stdio fixture on the raw
// wire: the headers, and servers.changed events with the right reasons and states.
func TestEventsServerStates(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "fx")))
	p.waitState("fx", 20*time.Second, actors.StateReady)
	s := openSSE(t, p, "/events", keyHeader(p))
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := s.Resp.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	// state returns the index of the first fx event from index from that satisfies cond.
	find := func(evs []sseEvent, from int, cond func(changed) bool) int {
		for i := from; i < len(evs); i++ {
			if c, ok := decodeChanged(t, evs[i]); ok && c.Server.Name == "fx" && cond(c) {
				return i
			}
		}
		return -1
	}
	isState := func(st actors.State) func(changed) bool {
		return func(c changed) bool { return c.Server.State == st }
	}

	if code, body := p.do("POST", "/api/v1/servers/fx/disable", nil, nil); code != 200 {
		t.Fatalf("disable: %d %s", code, body)
	}
	evs := s.waitEvents(10*time.Second, "fx disabled", func(evs []sseEvent) bool { return find(evs, 0, isState(actors.StateDisabled)) >= 0 })
	reason := find(evs, 0, func(c changed) bool { return c.Reason == actors.ReasonDisabled })
	if reason < 0 || reason > find(evs, 0, isState(actors.StateDisabled)) {
		t.Fatalf("no reason=disabled event before the disabled state: %s", describeEvents(evs))
	}
	if c, _ := decodeChanged(t, evs[reason]); c.Server.Enabled {
		t.Errorf("reason=disabled event shows enabled=true: %s", evs[reason].Data)
	}
	mark := len(evs)

	if code, body := p.do("POST", "/api/v1/servers/fx/enable", nil, nil); code != 200 {
		t.Fatalf("enable: %d %s", code, body)
	}
	evs = s.waitEvents(20*time.Second, "fx ready again", func(evs []sseEvent) bool { return find(evs, mark, isState(actors.StateReady)) >= 0 })
	enabled := find(evs, mark, func(c changed) bool { return c.Reason == actors.ReasonEnabled })
	if enabled < 0 || enabled > find(evs, mark, isState(actors.StateReady)) {
		t.Fatalf("no reason=enabled event before ready: %s", describeEvents(evs[mark:]))
	}
	if c, _ := decodeChanged(t, evs[find(evs, mark, isState(actors.StateReady))]); !c.Server.Connected || c.Server.ToolsCount == 0 {
		t.Errorf("ready event: connected=%v tools=%d", c.Server.Connected, c.Server.ToolsCount)
	}
	checkWire(t, evs)
}

// TestEventsReplay: Last-Event-ID (header or lastEventId query) replays exactly the
// missed events in order, then live ones; an old id gets the whole log, a newer one none,
// and a non-numeric one is a 400.
func TestEventsReplay(t *testing.T) {
	p := startProxy(t, servers(disabledServer(t, "q")))
	a := openSSE(t, p, "/events", keyHeader(p))
	toggleQuarantine(p, "q", 5)
	all := a.waitCount(5, 10*time.Second)
	checkWire(t, all)
	k := all[1].ID

	b := openSSE(t, p, "/events", map[string]string{"X-API-Key": p.Key, "Last-Event-ID": k})
	sameEvents(t, b.waitCount(3, 10*time.Second), all[2:5])
	c := openSSE(t, p, "/events?lastEventId="+k+"&apikey="+url.QueryEscape(p.Key), nil)
	sameEvents(t, c.waitCount(3, 10*time.Second), all[2:5])

	// Live events follow the replay.
	toggleQuarantine(p, "q", 1)
	all = a.waitCount(6, 10*time.Second)
	sameEvents(t, b.waitCount(4, 10*time.Second), all[2:6])
	sameEvents(t, c.waitCount(4, 10*time.Second), all[2:6])

	// Id 0 is older than every logged event: the whole log, which in a fresh data dir is
	// every event from id 1 on, ending with what a saw.
	whole := openSSE(t, p, "/events", map[string]string{"X-API-Key": p.Key, "Last-Event-ID": "0"})
	lastID := eventID(t, all[5])
	got := whole.waitCount(int(lastID), 10*time.Second)
	checkWire(t, got)
	if eventID(t, got[0]) != 1 || len(got) != int(lastID) {
		t.Fatalf("replay from 0: %s", describeEvents(got))
	}
	sameEvents(t, got[len(got)-6:], all)

	// An id newer than the newest (another data dir's) replays nothing: live only.
	future := openSSE(t, p, "/events", map[string]string{"X-API-Key": p.Key, "Last-Event-ID": strconv.FormatUint(lastID+100, 10)})
	toggleQuarantine(p, "q", 1)
	all = a.waitCount(7, 10*time.Second)
	sameEvents(t, future.waitCount(1, 10*time.Second), all[6:7])

	for _, bad := range []string{"abc", "-1", "1.5", "99999999999999999999999"} {
		t.Run("bad id "+bad, func(t *testing.T) {
			s := openSSE(t, p, "/events", map[string]string{"X-API-Key": p.Key, "Last-Event-ID": bad})
			body, _ := io.ReadAll(s.Resp.Body)
			if s.Resp.StatusCode != 400 || !strings.Contains(string(body), "INVALID_ARGUMENT") {
				t.Fatalf("Last-Event-ID %q: %d %s", bad, s.Resp.StatusCode, body)
			}
		})
	}
}

// TestEventsIDsAcrossRestart: ids keep increasing across a daemon restart on the same data
// dir, and a client reconnecting to the new daemon gets what it missed from the old one.
func TestEventsIDsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	p1 := startProxyIn(t, dir, servers(disabledServer(t, "q")))
	a := openSSE(t, p1, "/events", keyHeader(p1))
	toggleQuarantine(p1, "q", 3)
	before := a.waitCount(3, 10*time.Second)
	checkWire(t, before)
	a.Close()
	p1.Stop()

	p2 := startProxyIn(t, dir, nil)
	b := openSSE(t, p2, "/events", map[string]string{"X-API-Key": p2.Key, "Last-Event-ID": before[0].ID})
	replayed := b.waitCount(2, 10*time.Second)
	sameEvents(t, replayed[:2], before[1:3])
	toggleQuarantine(p2, "q", 1)
	evs := b.waitEvents(10*time.Second, "a new servers.changed", func(evs []sseEvent) bool {
		for _, e := range evs[2:] {
			if c, ok := decodeChanged(t, e); ok && c.Server.Name == "q" && (c.Reason == actors.ReasonQuarantined || c.Reason == actors.ReasonUnquarantined) {
				return true
			}
		}
		return false
	})
	checkWire(t, evs)
	if last := eventID(t, evs[len(evs)-1]); last <= eventID(t, before[2]) {
		t.Fatalf("id after restart %d is not above %d", last, eventID(t, before[2]))
	}
}

// TestEventsAuthAndHead: the key by header, bearer or ?apikey=, 401 without it, the Host
// check, and HEAD answering headers only.
func TestEventsAuthAndHead(t *testing.T) {
	p := startProxy(t, servers())
	key := url.QueryEscape(p.Key)
	for _, tc := range []struct {
		name    string
		path    string
		headers map[string]string
		want    int
	}{
		{"no key", "/events", nil, 401},
		{"wrong header key", "/events", map[string]string{"X-API-Key": "nope"}, 401},
		{"wrong query key", "/events?apikey=nope", nil, 401},
		{"empty query key", "/events?apikey=", nil, 401},
		{"header key", "/events", map[string]string{"X-API-Key": p.Key}, 200},
		{"bearer", "/events", map[string]string{"Authorization": "Bearer " + p.Key}, 200},
		{"query key", "/events?apikey=" + key, nil, 200},
		{"foreign host", "/events?apikey=" + key, map[string]string{"Host": "evil.example:80"}, 403},
		{"foreign origin", "/events?apikey=" + key, map[string]string{"Origin": "http://evil.example"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openSSE(t, p, tc.path, tc.headers)
			if s.Resp.StatusCode != tc.want {
				body, _ := io.ReadAll(s.Resp.Body)
				t.Fatalf("status %d, want %d: %s", s.Resp.StatusCode, tc.want, body)
			}
			if tc.want == 401 {
				body, _ := io.ReadAll(s.Resp.Body)
				if !strings.Contains(string(body), "UNAUTHORIZED") {
					t.Fatalf("401 body %s", body)
				}
			}
		})
	}

	head := func(headers map[string]string) *http.Response {
		t.Helper()
		u, _ := url.Parse(p.URL)
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		req := writeSSERequest(t, conn, "HEAD", u.Host, "/events", headers)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatal(err)
		}
		// Nothing may follow the headers of a HEAD answer: the server sends no body and
		// keeps the connection, so a read finds no bytes until the deadline.
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, _ := br.Read(make([]byte, 1)); n != 0 {
			t.Fatalf("HEAD /events sent a body")
		}
		return resp
	}
	resp := head(keyHeader(p))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" ||
		resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("HEAD /events: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := head(nil); resp.StatusCode != 401 {
		t.Fatalf("HEAD /events without key: %d", resp.StatusCode)
	}
}

// TestEventsBulkOnePerServer: bulk operations give one servers.changed per server with the
// bulk's reason.
func TestEventsBulkOnePerServer(t *testing.T) {
	names := []string{"b1", "b2", "b3"}
	p := startProxy(t, servers(stdioFixture(t, "b1"), stdioFixture(t, "b2"), stdioFixture(t, "b3")))
	for _, n := range names {
		p.waitState(n, 20*time.Second, actors.StateReady)
	}
	s := openSSE(t, p, "/events", keyHeader(p))
	// count returns, per server, the events from index from with the given reason, and
	// whether every server's last event from there is in state st.
	count := func(evs []sseEvent, from int, reason string, st actors.State) (map[string]int, bool) {
		n := map[string]int{}
		last := map[string]actors.State{}
		for _, e := range evs[from:] {
			if c, ok := decodeChanged(t, e); ok {
				if c.Reason == reason {
					n[c.Server.Name]++
				}
				last[c.Server.Name] = c.Server.State
			}
		}
		for _, name := range names {
			if last[name] != st {
				return n, false
			}
		}
		return n, true
	}
	mark := 0
	for _, step := range []struct {
		op, reason string
		state      actors.State
	}{
		{"disable_all", actors.ReasonDisabled, actors.StateDisabled},
		{"enable_all", actors.ReasonEnabled, actors.StateReady},
		{"restart_all", actors.ReasonRestart, actors.StateReady},
	} {
		if code, body := p.do("POST", "/api/v1/servers/"+step.op, nil, nil); code != 200 {
			t.Fatalf("%s: %d %s", step.op, code, body)
		}
		evs := s.waitEvents(30*time.Second, step.op+" to settle", func(evs []sseEvent) bool {
			_, ok := count(evs, mark, step.reason, step.state)
			return ok
		})
		n, _ := count(evs, mark, step.reason, step.state)
		for _, name := range names {
			if n[name] != 1 {
				t.Fatalf("%s: %d events with reason %s for %s, want 1: %s", step.op, n[name], step.reason, name, describeEvents(evs[mark:]))
			}
		}
		checkWire(t, evs)
		mark = len(evs)
	}
}

// TestEventsStalledSubscriber: a client that sends its request and never reads is dropped
// once its buffer is full, while 10 others receive every event at once and the hub keeps
// answering. Events of 16 KiB fill the stalled connection's buffers quickly.
func TestEventsStalledSubscriber(t *testing.T) {
	p := startProxy(t, servers(disabledServer(t, "q")))
	own := p.internalSubscribers()
	healthy := make([]*sseStream, 10)
	for i := range healthy {
		healthy[i] = openSSE(t, p, "/events", keyHeader(p))
	}
	stalled := stalledConn(t, p)
	waitFor(t, 10*time.Second, "11 subscribers", func() bool { return p.hubStats().Subscribers == 11+own })

	payload, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", 16<<10)})
	const maxEvents = 5000
	var slowest, slowestAsk time.Duration
	n := 0
	for ; n < maxEvents; n++ {
		start := time.Now()
		p.D.System.Root.Send(p.D.Hub, actors.Event{Name: "test.filler", Data: payload})
		// Every healthy client gets this event before the next is published: none of them
		// ever lags, so only the stalled one can fill its buffer.
		for _, h := range healthy {
			h.waitCount(n+1, 5*time.Second)
		}
		slowest = max(slowest, time.Since(start))
		if n%20 == 0 {
			askStart := time.Now()
			st := p.hubStats()
			slowestAsk = max(slowestAsk, time.Since(askStart))
			if st.Dropped > 0 {
				break
			}
		}
	}
	st := p.hubStats()
	if st.Dropped != 1 || st.Subscribers != 10+own {
		t.Fatalf("after %d events: %+v, want 1 dropped and 10 subscribers", n, st)
	}
	t.Logf("stalled subscriber dropped after %d events of 16 KiB; slowest delivery to all 10: %s; slowest stats answer: %s", n, slowest, slowestAsk)
	if slowestAsk > time.Second {
		t.Errorf("the hub took %s to answer a stats request", slowestAsk)
	}

	// The healthy ones got every event, in order, and still follow domain events.
	toggleQuarantine(p, "q", 1)
	for i, h := range healthy {
		evs := h.waitEvents(5*time.Second, "the servers.changed after the drop", func(evs []sseEvent) bool {
			return len(evs) > 0 && evs[len(evs)-1].Name == "servers.changed"
		})
		checkWire(t, evs)
		fillers := 0
		for _, e := range evs {
			if e.Name == "test.filler" {
				fillers++
			}
		}
		if fillers < n {
			t.Fatalf("healthy client %d got %d of %d filler events", i, fillers, n)
		}
	}

	// The server closed the stalled connection: draining it ends in EOF.
	_ = stalled.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, stalled); err != nil {
		t.Fatalf("the stalled connection was not closed by the server: %v", err)
	}
}

// TestEventsShutdownWithOpenStreams: shutting down with 100 open streams finishes well
// within the shutdown bound, every stream ends, and no goroutine is left behind.
func TestEventsShutdownWithOpenStreams(t *testing.T) {
	before := goleak.IgnoreCurrent()
	p := startProxy(t, servers(disabledServer(t, "q")))
	own := p.internalSubscribers()
	streams := make([]*sseStream, 100)
	for i := range streams {
		streams[i] = openSSE(t, p, "/events?apikey="+url.QueryEscape(p.Key), nil)
	}
	waitFor(t, 10*time.Second, "100 subscribers", func() bool { return p.hubStats().Subscribers == 100+own })
	toggleQuarantine(p, "q", 1)
	for _, s := range streams {
		s.waitCount(1, 10*time.Second)
	}

	const bound = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	start := time.Now()
	if err := p.D.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	took := time.Since(start)
	t.Logf("shutdown with 100 open streams took %s", took)
	if took > bound/2 {
		t.Errorf("shutdown took %s", took)
	}
	for i, s := range streams {
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("stream %d did not end after shutdown", i)
		}
		if _, err := s.Ended(); err != io.EOF {
			t.Errorf("stream %d ended with %v, want a clean EOF", i, err)
		}
	}
	p.client.CloseIdleConnections()
	goleak.VerifyNone(t, before)
}

// nodeBin is the node of test/node_modules (the version package.json pins), else the one on
// PATH.
func nodeBin(t testing.TB) string {
	t.Helper()
	if p := filepath.Join(repoRoot(), "test", "node_modules", ".bin", "node"); fileExists(p) {
		return p
	}
	p, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found: %v", err)
	}
	return p
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// nodeLine is one line printed by events_client.mjs.
type nodeLine struct {
	Type    string `json:"type"`
	Event   string `json:"event"`
	ID      string `json:"id"`
	Data    string `json:"data"`
	Message string `json:"message"`
	Code    int    `json:"code"`
}

// runNodeClient starts events_client.mjs and returns its lines as they come and a wait
// func giving its exit error.
func runNodeClient(t *testing.T, args ...string) (<-chan nodeLine, func() error) {
	t.Helper()
	if !fileExists(filepath.Join(repoRoot(), "test", "node_modules", "eventsource")) {
		t.Fatal("npm package eventsource is not installed (run npm ci in test/)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, nodeBin(t), append([]string{filepath.Join(repoRoot(), "test", "events_client.mjs")}, args...)...)
	cmd.Dir = filepath.Join(repoRoot(), "test")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan nodeLine, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var l nodeLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				l = nodeLine{Type: "garbage", Message: sc.Text()}
			}
			lines <- l
		}
	}()
	return lines, func() error {
		err := cmd.Wait()
		if err != nil && stderr.String() != "" {
			t.Logf("node stderr: %s", stderr.String())
		}
		return err
	}
}

// nextLine waits for the next line of the node client.
func nextLine(t *testing.T, lines <-chan nodeLine, what string) nodeLine {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatalf("node client exited while waiting for %s", what)
		}
		return l
	case <-time.After(30 * time.Second):
		t.Fatalf("node client: timed out waiting for %s", what)
	}
	return nodeLine{}
}

// TestEventsNodeEventSource: the npm eventsource package (WHATWG EventSource) connects with
// ?apikey=, receives named events with their ids and data, resumes with lastEventId, and
// gives up on a wrong key.
func TestEventsNodeEventSource(t *testing.T) {
	p := startProxy(t, servers(disabledServer(t, "q")))
	lines, wait := runNodeClient(t, p.URL, p.Key, "3")
	if l := nextLine(t, lines, "open"); l.Type != "open" {
		t.Fatalf("first line %+v, want open", l)
	}
	toggleQuarantine(p, "q", 3)
	var got []nodeLine
	for i := range 3 {
		l := nextLine(t, lines, fmt.Sprintf("event %d", i+1))
		if l.Type != "event" || l.Event != "servers.changed" {
			t.Fatalf("line %+v, want a servers.changed event", l)
		}
		c, _ := decodeChanged(t, sseEvent{Name: l.Event, Data: l.Data})
		wantReason := []string{actors.ReasonQuarantined, actors.ReasonUnquarantined}[i%2]
		if c.Server.Name != "q" || c.Reason != wantReason {
			t.Fatalf("event %d: %s, want reason %s for q", i+1, l.Data, wantReason)
		}
		got = append(got, l)
	}
	if err := wait(); err != nil {
		t.Fatalf("node client: %v", err)
	}
	checkWire(t, []sseEvent{{ID: got[0].ID, Name: got[0].Event, Data: got[0].Data},
		{ID: got[1].ID, Name: got[1].Event, Data: got[1].Data}, {ID: got[2].ID, Name: got[2].Event, Data: got[2].Data}})

	t.Run("lastEventId resumes", func(t *testing.T) {
		lines, wait := runNodeClient(t, p.URL, p.Key, "2", got[0].ID)
		nextLine(t, lines, "open")
		for i, want := range got[1:] {
			if l := nextLine(t, lines, "a replayed event"); l.ID != want.ID || l.Data != want.Data {
				t.Fatalf("replayed event %d: %+v, want %+v", i, l, want)
			}
		}
		if err := wait(); err != nil {
			t.Fatalf("node client: %v", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		lines, wait := runNodeClient(t, p.URL, "wrong", "1")
		if l := nextLine(t, lines, "the error"); l.Type != "error" || l.Code != 401 {
			t.Fatalf("line %+v, want an error", l)
		}
		if err := wait(); err == nil {
			t.Fatal("node client exited 0 with a wrong key")
		}
	})
}
