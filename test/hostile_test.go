package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/config"
)

// hostileBin is the path of the built test/hostile.
func hostileBin(t testing.TB) string { return filepath.Join(binaries(t), "hostile") }

// startHostileHTTP starts test/hostile in one of its HTTP modes and returns its URL. The
// process is stopped at cleanup.
func startHostileHTTP(t testing.TB, mode string) string {
	t.Helper()
	url, _ := startListening(t, hostileBin(t), "--mode", mode)
	return url
}

// rssLimitKB is the daemon's memory budget while upstreams attack it. An oversized message
// is held once, in the chunks it arrived in, until it crosses max_message_bytes (16 MiB);
// with the collector's headroom each attacking upstream may cost about twice that, on top
// of the daemon's own 50 MiB or so.
const rssLimitKB = 200 << 10

// TestHostileEndlessAnswers runs remote upstreams whose first message never ends: a
// streamable HTTP server answering initialize with an endless JSON body, and a legacy SSE
// server whose endpoint event line never ends, each under two names, one approved and one
// quarantined (quarantined servers connect too, for review). Both end in error/backoff
// with last_error naming max_message_bytes and keep retrying, and the daemon's resident
// memory stays under 200 MB throughout (without the limit it grew by gigabytes within a
// minute).
func TestHostileEndlessAnswers(t *testing.T) {
	for _, tc := range []struct{ name, mode, protocol string }{
		{"streamable HTTP endless JSON", "endless-json", "http"},
		{"legacy SSE endless endpoint line", "endless-endpoint", "sse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := startHostileHTTP(t, tc.mode)
			p := startProxyProcess(t, t.TempDir(), servers(
				map[string]any{"name": "open", "protocol": tc.protocol, "url": url, "quarantined": false},
				map[string]any{"name": "held", "protocol": tc.protocol, "url": url},
			))
			checkEndless(t, p, []string{"open", "held"})
		})
	}
}

// checkEndless polls the servers until each has shown error/backoff with the limit in
// last_error and retried, sampling the daemon's resident memory all along.
func checkEndless(t *testing.T, p *proxy, names []string) {
	t.Helper()
	pid := p.Cmd.Process.Pid
	want := fmt.Sprintf("answer exceeded max_message_bytes (%d)", config.DefaultMaxMessageBytes)
	retries := bySoak(3, 6)
	seen := map[string]bool{} // the server showed error/backoff with the limit in last_error
	last := map[string]actors.Server{}
	var peak int64
	deadline := time.Now().Add(bySoak(90*time.Second, 5*time.Minute))
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		peak = max(peak, vmRSSKB(t, pid))
		if i%8 == 0 {
			done := true
			for _, n := range names {
				s := p.server(n)
				last[n] = s
				if (s.State == actors.StateError || s.State == actors.StateBackoff) && strings.Contains(s.LastError, want) {
					seen[n] = true
				}
				done = done && seen[n] && s.RetryCount >= retries
			}
			if done {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every hostile server failed with %q and retried %d times in time: %+v", want, retries, last)
		}
		<-tick.C
	}
	for _, n := range names {
		s := last[n]
		t.Logf("%s: state %s, retries %d, quarantined %v, last_error %q", n, s.State, s.RetryCount, s.Quarantined, s.LastError)
		if s.Quarantined != (n == "held") {
			t.Errorf("%s: quarantined %v", n, s.Quarantined)
		}
		if len(s.LastError) > 300 {
			t.Errorf("%s: last_error is %d bytes: it quotes the answer", n, len(s.LastError))
		}
	}
	t.Logf("daemon peak RSS %d MiB", peak>>10)
	if peak > rssLimitKB {
		t.Errorf("daemon RSS peaked at %d MiB while upstreams sent endless answers (limit %d MiB)", peak>>10, rssLimitKB>>10)
	}
	if code, _ := p.do("GET", "/api/v1/status", nil, nil); code != 200 {
		t.Errorf("status while attacked: %d", code)
	}
}

// floodStats is what test/hostile --mode list-flood reports in its stats file.
type floodStats struct {
	ToolsList int  `json:"tools_list"`
	FloodDone bool `json:"flood_done"`
}

func readFloodStats(t testing.TB, path string) floodStats {
	t.Helper()
	var st floodStats
	data, err := os.ReadFile(path)
	if err != nil {
		return st // not written yet
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("stats file %q: %v", data, err)
	}
	return st
}

// TestHostileListChangedFlood runs a stdio upstream that, once indexed, sends 20,000
// notifications/tools/list_changed and then changes its tool list (and says so once
// more). The daemon coalesces: the upstream receives a handful of tools/list requests, not
// one per notification; the index ends with the final list; the server stays ready, and
// the daemon's memory stays bounded.
func TestHostileListChangedFlood(t *testing.T) {
	const notifications = 20000
	stats := filepath.Join(t.TempDir(), "stats.json")
	p := startProxyProcess(t, t.TempDir(), servers(map[string]any{
		"name": "flood", "command": hostileBin(t), "quarantined": false,
		"args": []string{"--mode", "list-flood", "--flood", fmt.Sprint(notifications), "--stats", stats},
	}))
	p.waitState("flood", 30*time.Second, actors.StateReady)
	pid := p.Cmd.Process.Pid
	finalNames := []string{"flood:after_flood_1", "flood:after_flood_2"}
	var peak int64
	var st floodStats
	var names []string
	waitFor(t, 60*time.Second, "the flood to end and the index to hold the final list", func() bool {
		peak = max(peak, vmRSSKB(t, pid))
		st = readFloodStats(t, stats)
		if !st.FloodDone {
			return false
		}
		var tools actors.ServerTools
		if code, body := p.do("GET", "/api/v1/servers/flood/tools", nil, &tools); code != 200 {
			t.Fatalf("server tools: %d %s", code, body)
		}
		names = names[:0]
		for _, tl := range tools.Tools {
			names = append(names, tl.Name)
		}
		slices.Sort(names)
		return slices.Equal(names, finalNames)
	})
	// The final tools are new on an approved server, so tool-level trust holds them for
	// review; approved, they are searchable.
	if code, body := p.do("POST", "/api/v1/servers/flood/tools/approve", map[string]any{"all": true}, nil); code != 200 {
		t.Fatalf("approving the final tools: %d %s", code, body)
	}
	hits := hitNames(p.searchHTTP("?q=hostile+test+tool&limit=10").Tools)
	slices.Sort(hits)
	if !slices.Equal(hits, finalNames) {
		t.Errorf("search finds %v, want the final list %v", hits, finalNames)
	}
	if s := p.server("flood"); s.State != actors.StateReady || s.ToolsCount != len(finalNames) {
		t.Errorf("after the flood: state %s, tools_count %d", s.State, s.ToolsCount)
	}
	st = readFloodStats(t, stats)
	t.Logf("%d notifications caused %d tools/list requests (the first is the connect's); daemon peak RSS %d MiB",
		notifications, st.ToolsList, peak>>10)
	// One list in flight and one queued at any time: the count depends on how fast the
	// lists complete during the flood, but it is a few dozen at most, not thousands.
	if st.ToolsList > 100 {
		t.Errorf("%d notifications caused %d tools/list requests; want them coalesced", notifications, st.ToolsList)
	}
	if peak > rssLimitKB {
		t.Errorf("daemon RSS peaked at %d MiB during the flood (limit %d MiB)", peak>>10, rssLimitKB>>10)
	}
}

// TestMaxMessageBytesApply lowers max_message_bytes to 64 KiB through the API while a
// stdio and a streamable HTTP server with 300 tools (a tool list of about 140 KiB) run:
// their connections are left alone; once restarted, each fails with last_error naming the
// new limit (so the stdio line and the HTTP body are bounded by the config); removing the
// setting brings them back. A value out of range is refused and names the field.
func TestMaxMessageBytesApply(t *testing.T) {
	httpURL, _ := startFixtureHTTP(t, "http", "--tools", "300")
	p := startProxy(t, servers(
		stdioFixture(t, "big", "--tools", "300"),
		map[string]any{"name": "bighttp", "url": httpURL, "quarantined": false},
	))
	names := []string{"big", "bighttp"}
	for _, n := range names {
		p.waitState(n, 30*time.Second, actors.StateReady)
	}
	cur, _, _ := p.getConfig()

	bad := withServers(cur, serverList(t, cur)...)
	bad["max_message_bytes"] = 1000
	if code, res, body := p.apply(bad); code != 400 || len(res.Errors) != 1 || res.Errors[0].Field != "max_message_bytes" {
		t.Fatalf("apply with max_message_bytes 1000: %d %s", code, body)
	}

	small := withServers(cur, serverList(t, cur)...)
	small["max_message_bytes"] = 65536
	if code, res, body := p.apply(small); code != 200 || !res.Applied || len(res.Changed) != 0 {
		t.Fatalf("apply with max_message_bytes 65536: %d %s", code, body)
	}
	for _, n := range names {
		if s := p.server(n); s.State != actors.StateReady {
			t.Errorf("%s: %s right after the apply; running connections keep their limit", n, s.State)
		}
		if code, body := p.do("POST", "/api/v1/servers/"+n+"/restart", nil, nil); code != 200 {
			t.Fatalf("restart %s: %d %s", n, code, body)
		}
	}
	for _, n := range names {
		var s actors.Server
		waitFor(t, 30*time.Second, n+" to fail with the new limit", func() bool {
			s = p.server(n)
			return strings.Contains(s.LastError, "answer exceeded max_message_bytes (65536)")
		})
		t.Logf("%s: state %s, last_error %q", n, s.State, s.LastError)
	}

	if code, _, body := p.apply(withServers(cur, serverList(t, cur)...)); code != 200 {
		t.Fatalf("apply without max_message_bytes: %d %s", code, body)
	}
	for _, n := range names {
		if code, body := p.do("POST", "/api/v1/servers/"+n+"/restart", nil, nil); code != 200 {
			t.Fatalf("restart %s: %d %s", n, code, body)
		}
		if s := p.waitState(n, 30*time.Second, actors.StateReady); s.ToolsCount < 300 {
			t.Errorf("%s: %d tools after the limit was lifted", n, s.ToolsCount)
		}
	}
}
