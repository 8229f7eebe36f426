package test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors"
)

// BenchmarkPassthroughEcho is the latency of one tools/call through /mcp/server/{name} to
// the stdio fixture (the session's own process), one client, calls in a row; b.N calls:
//
//	go test -run '^$' -bench PassthroughEcho -benchtime 2000x -count 5 ./test/
//
// It reports the median and p99 besides Go's mean.
func BenchmarkPassthroughEcho(b *testing.B) {
	p := startProxy(b, servers(stdioFixture(b, "fxs")))
	p.waitState("fxs", 30*time.Second, actors.StateReady)
	c, err := client.NewStreamableHttpClient(p.URL+"/mcp/server/fxs?apikey="+p.Key, benchHTTP())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.ProtocolVersion20251125
	req.Params.ClientInfo = mcp.Implementation{Name: "bench-passthrough", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		b.Fatal(err)
	}
	call := echoCall(c, "")
	for range 50 { // warm up the session's process
		if err := call(ctx); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := call(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
}
