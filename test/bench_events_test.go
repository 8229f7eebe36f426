package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBenchEventsFanout is benchmark B5 of BENCHMARKS.md: 1,000 /events subscribers, the
// time until all have received one servers.changed (p50 and p99 over rounds, and over
// every single delivery), the daemon's RSS with them connected, and the same again with
// one stalled subscriber among them. The daemon runs as its own process (the built
// binary), the subscribers are raw connections in this process. It only runs when asked:
//
//	MCPPROXY_BENCH_EVENTS=1 go test -run TestBenchEventsFanout -v -count=1 ./test/
//
// MCPPROXY_BENCH_EVENTS_SUBS and MCPPROXY_BENCH_EVENTS_ROUNDS change the defaults (1000
// subscribers, 30 rounds).
func TestBenchEventsFanout(t *testing.T) {
	if os.Getenv("MCPPROXY_BENCH_EVENTS") == "" {
		t.Skip("set MCPPROXY_BENCH_EVENTS=1 to run benchmark B5")
	}
	subs, rounds := 1000, 30
	if v := os.Getenv("MCPPROXY_BENCH_EVENTS_SUBS"); v != "" {
		fmt.Sscan(v, &subs)
	}
	if v := os.Getenv("MCPPROXY_BENCH_EVENTS_ROUNDS"); v != "" {
		fmt.Sscan(v, &rounds)
	}
	p := startProxyProcess(t, t.TempDir(), servers(disabledServer(t, "q")))
	rssIdle := rssOf(t, p.Cmd.Process.Pid)

	fan := newFanout(t, p, subs)
	// flip changes q's quarantine flag with one POST (no GET first, so that only the change
	// itself is timed): one servers.changed.
	quarantined := false
	flip := func() {
		quarantined = !quarantined
		if code, body := p.do("POST", "/api/v1/servers/q/quarantine", map[string]bool{"quarantined": quarantined}, nil); code != 200 {
			t.Fatalf("quarantine: %d %s", code, body)
		}
	}
	// Warm-up: every subscriber is live once it has the first event.
	flip()
	fan.waitAll(t, 1)
	rss := rssOf(t, p.Cmd.Process.Pid)

	measure := func(label string, first int) {
		var all, worst []time.Duration
		for r := first; r < first+rounds; r++ {
			t0 := time.Now()
			flip()
			var lat []time.Duration
			for _, at := range fan.waitAll(t, r+1) {
				lat = append(lat, at.Sub(t0))
			}
			all = append(all, lat...)
			worst = append(worst, slices.Max(lat))
		}
		t.Logf("B5 %s: %d subscribers, %d rounds: all received after p50 %s p99 %s (max %s); per delivery p50 %s p99 %s",
			label, subs, rounds, pct(worst, 50), pct(worst, 99), slices.Max(worst), pct(all, 50), pct(all, 99))
	}
	measure("healthy", 1)

	stalled := stalledConn(t, p)
	defer stalled.Close()
	measure("with one stalled subscriber", 1+rounds)
	t.Logf("B5 daemon RSS: %.1f MB idle, %.1f MB with %d subscribers, %.1f MB at the end (peak %.1f MB)",
		rssIdle.rss, rss.rss, subs, rssOf(t, p.Cmd.Process.Pid).rss, rssOf(t, p.Cmd.Process.Pid).hwm)
	// Each flip is exactly one servers.changed; more would mean the rounds were mismatched.
	fan.mu.Lock()
	for i, a := range fan.arrived {
		if len(a) != 1+2*rounds {
			t.Errorf("subscriber %d got %d servers.changed for %d changes", i, len(a), 1+2*rounds)
			break
		}
	}
	fan.mu.Unlock()
	fan.close()
}

// fanout is many raw /events subscribers that each record when they read the blank line
// ending every servers.changed event.
type fanout struct {
	mu      sync.Mutex
	arrived [][]time.Time // per subscriber, per servers.changed
	notify  chan struct{}
	conns   []net.Conn
	wg      sync.WaitGroup
}

func newFanout(t *testing.T, p *proxy, n int) *fanout {
	t.Helper()
	u, _ := url.Parse(p.URL)
	f := &fanout{arrived: make([][]time.Time, n), notify: make(chan struct{}, 1)}
	for i := range n {
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatalf("subscriber %d: %v", i, err)
		}
		f.conns = append(f.conns, conn)
		req := writeSSERequest(t, conn, "GET", u.Host, "/events", keyHeader(p))
		br := bufio.NewReaderSize(conn, 4<<10)
		resp, err := http.ReadResponse(br, req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("subscriber %d: %v %v", i, err, resp)
		}
		f.wg.Add(1)
		go f.read(i, resp.Body)
	}
	t.Cleanup(f.close)
	return f
}

func (f *fanout) read(i int, body io.Reader) {
	defer f.wg.Done()
	br := bufio.NewReaderSize(body, 4<<10)
	isChanged := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		switch {
		case strings.HasPrefix(line, "event: servers.changed"):
			isChanged = true
		case line == "\n" && isChanged:
			now := time.Now()
			isChanged = false
			f.mu.Lock()
			f.arrived[i] = append(f.arrived[i], now)
			f.mu.Unlock()
			select {
			case f.notify <- struct{}{}:
			default:
			}
		}
	}
}

// waitAll waits until every subscriber has n servers.changed events and returns when each
// got the n-th.
func (f *fanout) waitAll(t *testing.T, n int) []time.Time {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		var out []time.Time
		for _, a := range f.arrived {
			if len(a) < n {
				out = nil
				break
			}
			out = append(out, a[n-1])
		}
		f.mu.Unlock()
		if out != nil {
			return out
		}
		select {
		case <-f.notify:
		case <-deadline.C:
			t.Fatalf("not every subscriber got event %d within 30 s", n)
		}
	}
}

func (f *fanout) close() {
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.conns = nil
	f.wg.Wait()
}

// pct is the p-th percentile (nearest rank) of ds.
func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))].Round(10 * time.Microsecond)
}

type rssFigures struct{ rss, hwm float64 }

// rssOf reads a process's resident set (VmRSS) and its peak (VmHWM) in MB.
func rssOf(t *testing.T, pid int) rssFigures {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var f rssFigures
	for line := range strings.SplitSeq(string(data), "\n") {
		var kb float64
		if _, err := fmt.Sscanf(line, "VmRSS: %f kB", &kb); err == nil {
			f.rss = kb / 1024
		}
		if _, err := fmt.Sscanf(line, "VmHWM: %f kB", &kb); err == nil {
			f.hwm = kb / 1024
		}
	}
	return f
}
