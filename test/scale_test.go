package test

// End-to-end tests of the registry at scale: applying and removing thousands of servers must
// not stall the registry's other requests.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// closedURL returns an MCP URL on a loopback port nothing listens on (it was free a moment
// ago), so every dial is refused at once: an upstream that costs no process and no open
// socket, yet runs an actor that must be stopped on removal.
func closedURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/mcp"
}

// manyServers is a config's mcpServers list of n enabled remote servers at url.
func manyServers(n int, url string) []any {
	list := make([]any, n)
	for i := range list {
		list[i] = map[string]any{"name": fmt.Sprintf("bulk-%05d", i), "url": url, "quarantined": false}
	}
	return list
}

// statusPoller GETs /api/v1/status in a loop until stopped and counts the answers that were
// not 200 (a 504 is what a registry stuck on a long mailbox answers after its ask timeout).
type statusPoller struct {
	bad, ok atomic.Int64
	first   atomic.Value // string: the first bad answer
	stop    chan struct{}
	done    sync.WaitGroup
}

func pollStatus(t *testing.T, p *proxy) *statusPoller {
	sp := &statusPoller{stop: make(chan struct{})}
	client := &http.Client{Timeout: 60 * time.Second}
	sp.done.Go(func() {
		for {
			select {
			case <-sp.stop:
				return
			default:
			}
			req, _ := http.NewRequest("GET", p.URL+"/api/v1/status", nil)
			req.Header.Set("X-API-Key", p.Key)
			resp, err := client.Do(req)
			var why string
			if err != nil {
				why = err.Error()
			} else {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					why = fmt.Sprintf("%d %s", resp.StatusCode, body)
				}
			}
			if why != "" {
				sp.bad.Add(1)
				sp.first.CompareAndSwap(nil, why)
			} else {
				sp.ok.Add(1)
			}
			// About 20 requests a second: enough to see a stall, little load of its own.
			select {
			case <-sp.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	t.Cleanup(sp.halt)
	return sp
}

func (sp *statusPoller) halt() {
	select {
	case <-sp.stop:
	default:
		close(sp.stop)
	}
	sp.done.Wait()
}

// TestBigTearDownKeepsStatusAnswering applies 10,000 enabled servers (each an upstream actor
// dialing a closed port, in backoff) and then removes them all, while GET /api/v1/status is
// polled throughout: every answer must be 200. It used to be 504: each stopped actor's
// Terminated made the registry walk and sort every row, so removing n servers was O(n^2)
// work on the registry's one goroutine; and the apply dialed all 10,000 at once. B10 in
// test/bench measures the latency.
//
// The daemon runs as the built binary, not in-process: under -race, 10,000 upstream actors
// dialing measure the race detector rather than the daemon (the registry's logic is raced
// in actors' own tests, with the start window and the counts).
func TestBigTearDownKeepsStatusAnswering(t *testing.T) {
	const n = 10000
	p := startProxyProcess(t, t.TempDir(), servers())
	cfg, _, _ := p.getConfig()
	cfg["mcpServers"] = manyServers(n, closedURL(t))
	sp := pollStatus(t, p)
	t0 := time.Now()
	if code, res, body := p.apply(cfg); code != 200 || len(res.Added) != n {
		t.Fatalf("apply %d servers: %d %.300s", n, code, body)
	}
	// Every server's actor has started and failed at least once (none waits for a start
	// slot any more): all are running when they are removed. Polled slowly: each answer
	// lists 10,000 servers.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var list struct {
			Servers []struct {
				RetryCount int `json:"retry_count"`
			} `json:"servers"`
		}
		p.do("GET", "/api/v1/servers", nil, &list)
		failed := 0
		for _, s := range list.Servers {
			if s.RetryCount > 0 {
				failed++
			}
		}
		if failed == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d servers failed their first dial within 3 minutes", failed, n)
		}
		time.Sleep(250 * time.Millisecond) // a poll interval
	}
	t.Logf("all %d servers failed their first dial %s after the apply", n, time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	cfg["mcpServers"] = []any{}
	if code, res, body := p.apply(cfg); code != 200 || len(res.Removed) != n {
		t.Fatalf("remove %d servers: %d %.300s", n, code, body)
	}
	var st struct {
		Servers struct {
			Total int `json:"total"`
		} `json:"servers"`
	}
	waitFor(t, 3*time.Minute, "all servers to be gone", func() bool {
		p.do("GET", "/api/v1/status", nil, &st)
		return st.Servers.Total == 0
	})
	t.Logf("all %d servers gone %s after the apply that removed them", n, time.Since(t0).Round(time.Millisecond))
	sp.halt()
	if bad := sp.bad.Load(); bad > 0 {
		t.Fatalf("GET /api/v1/status failed %d times of %d during apply and tear-down; first: %v", bad, bad+sp.ok.Load(), sp.first.Load())
	}
	t.Logf("GET /api/v1/status answered 200 %d times during apply and tear-down", sp.ok.Load())
}
