package test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors"
)

// Benchmarks B1 and B2 of BENCHMARKS.md:
//
//	go test -run '^$' -bench 'B1|B2' -benchtime 2000x -count 5 ./test/
//
// B1 measures, in the same run, the latency of the fixture's echo called directly and
// through /mcp's call_tool (same client library, same machine), for a stdio and an HTTP
// upstream, with 1 and 16 concurrent clients; it reports both p50 and p99 and the
// difference ("added"). B2 is the call rate of 16 clients through /mcp to the HTTP fixture.

// mcpBench is a daemon with the fixture as a stdio upstream (fxs) and as an HTTP upstream
// (fxh), and the fixture's HTTP URL for direct calls.
type mcpBench struct {
	p     *proxy
	fxURL string
}

func newMCPBench(b *testing.B) *mcpBench {
	b.Helper()
	fxURL, _ := startFixtureHTTP(b, "http")
	p := startProxy(b, servers(stdioFixture(b, "fxs"), map[string]any{"name": "fxh", "url": fxURL, "quarantined": false}))
	p.waitState("fxs", 30*time.Second, actors.StateReady)
	p.waitState("fxh", 30*time.Second, actors.StateReady)
	return &mcpBench{p: p, fxURL: fxURL}
}

// benchHTTP is an HTTP client of its own for one benchmark client, keeping enough idle
// connections: mcp-go's default client shares http.DefaultTransport, which keeps two idle
// connections per host, so concurrent clients would spend their time dialling.
func benchHTTP() transport.StreamableHTTPCOption {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return transport.WithHTTPBasicClient(&http.Client{Transport: tr})
}

// echoCall returns a function that calls echo on c: directly (server "") or through
// call_tool as server:echo.
func echoCall(c *client.Client, server string) func(context.Context) error {
	req := mcp.CallToolRequest{}
	if server == "" {
		req.Params.Name = "echo"
		req.Params.Arguments = map[string]any{"text": "hello"}
	} else {
		req.Params.Name = "call_tool"
		req.Params.Arguments = map[string]any{"name": server + ":echo", "arguments": map[string]any{"text": "hello"}}
	}
	return func(ctx context.Context) error {
		res, err := c.CallTool(ctx, req)
		if err != nil {
			return err
		}
		if res.IsError || textOf(res) != "hello" {
			return fmt.Errorf("unexpected result %+v", res)
		}
		return nil
	}
}

// directClients returns n clients of the fixture itself: n HTTP clients, or one stdio
// fixture process shared by all n (as the proxy shares its one upstream process). They
// speak protocol 2025-11-25, as agents do toward /mcp, so that both paths are measured with
// the same client on the same protocol (mcp-go's 2026-07-28 calls are slower).
func (m *mcpBench) directClients(b *testing.B, upstream string, n int) []*client.Client {
	b.Helper()
	out := make([]*client.Client, n)
	if upstream == "stdio" {
		c, err := client.NewStdioMCPClient(fixtureBin(b), nil, "--name", "direct")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		initLegacy(b, c)
		for i := range out {
			out[i] = c
		}
		return out
	}
	for i := range out {
		c, err := client.NewStreamableHttpClient(m.fxURL, benchHTTP())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		if err := c.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		initLegacy(b, c)
		out[i] = c
	}
	return out
}

func initLegacy(b *testing.B, c *client.Client) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.ProtocolVersion20251125
	req.Params.ClientInfo = mcp.Implementation{Name: "bench-direct", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		b.Fatal(err)
	}
}

// processCPU is the user plus system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

// BenchmarkB1AddedLatency interleaves direct and proxied calls in every client goroutine so
// both see the same machine load; b.N is the number of call pairs.
func BenchmarkB1AddedLatency(b *testing.B) {
	m := newMCPBench(b)
	for _, up := range []struct{ kind, server string }{{"http", "fxh"}, {"stdio", "fxs"}} {
		for _, n := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/clients=%d", up.kind, n), func(b *testing.B) {
				direct := m.directClients(b, up.kind, n)
				proxied := make([]*client.Client, n)
				for i := range proxied {
					proxied[i] = dialMCP(b, m.p.URL+"/mcp", m.p.mcpKey(), "bench-proxy", benchHTTP())
				}
				// Warm both paths (connections, the mirror of tools, JIT-free but caches).
				for i := range n {
					for range 20 {
						if err := echoCall(direct[i], "")(context.Background()); err != nil {
							b.Fatal(err)
						}
						if err := echoCall(proxied[i], up.server)(context.Background()); err != nil {
							b.Fatal(err)
						}
					}
				}
				var mu sync.Mutex
				var dLat, pLat []time.Duration
				var failed atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				for g := range n {
					per := b.N / n
					if g < b.N%n {
						per++
					}
					wg.Go(func() {
						dc, pc := echoCall(direct[g], ""), echoCall(proxied[g], up.server)
						ds, ps := make([]time.Duration, 0, per), make([]time.Duration, 0, per)
						for i := range per {
							// Alternate which path goes first so neither always runs warm.
							first, second, fs, ss := dc, pc, &ds, &ps
							if i%2 == 1 {
								first, second, fs, ss = pc, dc, &ps, &ds
							}
							for _, step := range []struct {
								call func(context.Context) error
								lat  *[]time.Duration
							}{{first, fs}, {second, ss}} {
								ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
								t0 := time.Now()
								err := step.call(ctx)
								*step.lat = append(*step.lat, time.Since(t0))
								cancel()
								if err != nil {
									failed.Add(1)
								}
							}
						}
						mu.Lock()
						dLat, pLat = append(dLat, ds...), append(pLat, ps...)
						mu.Unlock()
					})
				}
				wg.Wait()
				b.StopTimer()
				if f := failed.Load(); f > 0 {
					b.Fatalf("%d calls failed", f)
				}
				slices.Sort(dLat)
				slices.Sort(pLat)
				us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
				d50, d99 := percentile(dLat, 0.50), percentile(dLat, 0.99)
				p50, p99 := percentile(pLat, 0.50), percentile(pLat, 0.99)
				b.ReportMetric(us(d50), "direct-p50-us")
				b.ReportMetric(us(d99), "direct-p99-us")
				b.ReportMetric(us(p50), "proxy-p50-us")
				b.ReportMetric(us(p99), "proxy-p99-us")
				b.ReportMetric(us(p50-d50), "added-p50-us")
				b.ReportMetric(us(p99-d99), "added-p99-us")
			})
		}
	}
}

// BenchmarkB2Throughput: 16 clients call the HTTP fixture's echo through /mcp as fast as
// they can; b.N is the total number of calls.
func BenchmarkB2Throughput(b *testing.B) {
	m := newMCPBench(b)
	const n = 16
	calls := make([]func(context.Context) error, n)
	for i := range calls {
		calls[i] = echoCall(dialMCP(b, m.p.URL+"/mcp", m.p.mcpKey(), "bench-b2", benchHTTP()), "fxh")
		for range 20 {
			if err := calls[i](context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	}
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	for g := range n {
		per := b.N / n
		if g < b.N%n {
			per++
		}
		wg.Go(func() {
			for range per {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if err := calls[g](ctx); err != nil {
					failed.Add(1)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
	// CPU time of this process (clients and daemon, not the fixture) per call: a figure a
	// busy shared machine disturbs far less than the call rate.
	b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(b.N), "cpu-us/call")
	b.ReportMetric(float64(failed.Load()), "errors")
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d calls failed", f, b.N)
	}
}
