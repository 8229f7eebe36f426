package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

const cmdB1 = "go run ./test/bench -only B1,B2"

// caller makes one tool call and says whether it failed.
type caller func(ctx context.Context) error

// mcpClient starts and initializes an mcp-go client.
func mcpClient(c *client.Client) (*client.Client, error) {
	ctx, cancel := ctxTimeout(30 * time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("start: %w", err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "mcpproxy-bench", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		c.Close()
		return nil, fmt.Errorf("initialize: %w", err)
	}
	return c, nil
}

func httpClient(url string, headers map[string]string) (*client.Client, error) {
	c, err := client.NewStreamableHttpClient(url, transport.WithHTTPHeaders(headers))
	if err != nil {
		return nil, err
	}
	return mcpClient(c)
}

// callEcho calls tool with {"text": ...} (direct) or call_tool with {name, arguments}
// (through the proxy) and fails on a transport error or an isError result.
func callEcho(c *client.Client, proxyName string) caller {
	req := mcp.CallToolRequest{}
	if proxyName == "" {
		req.Params.Name = "echo"
		req.Params.Arguments = map[string]any{"text": "hello"}
	} else {
		req.Params.Name = "call_tool"
		req.Params.Arguments = map[string]any{"name": proxyName, "arguments": map[string]any{"text": "hello"}}
	}
	return func(ctx context.Context) error {
		res, err := c.CallTool(ctx, req)
		if err != nil {
			return err
		}
		if res.IsError {
			return fmt.Errorf("tool error: %v", res.Content)
		}
		return nil
	}
}

// measure runs each caller in its own goroutine, warm calls first and then per measured
// calls, and returns every measured latency.
func measure(callers []caller, warm, per int) ([]time.Duration, error) {
	var mu sync.Mutex
	var all []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	for _, call := range callers {
		wg.Go(func() {
			lat := make([]time.Duration, 0, per)
			for i := -warm; i < per; i++ {
				ctx, cancel := ctxTimeout(30 * time.Second)
				t := time.Now()
				err := call(ctx)
				took := time.Since(t)
				cancel()
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					return
				}
				if i >= 0 {
					lat = append(lat, took)
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return all, firstErr
}

func cmpErr(old, err error) error {
	if old != nil {
		return old
	}
	return err
}

// benchCallLatency is B1 (added latency of a call through /mcp over a direct call, stdio and
// HTTP upstreams, 1 and 16 clients) and B2 (throughput of 16 clients through /mcp to an
// HTTP upstream).
func benchCallLatency(e *env) []row {
	e.progress("B1/B2 tool calls through /mcp vs direct")
	fail := func(err error) []row {
		return []row{
			missing("B1", "added latency per tool call", "p50 <= 0.5 ms (HTTP), <= 1 ms (stdio); p99 <= 2 ms", cmdB1, err.Error()),
			missing("B2", "tool-call throughput, 16 clients, HTTP upstream", ">= 5,000 calls/s, 0 errors", cmdB1, err.Error()),
		}
	}
	fxURL, err := e.startFixtureHTTP()
	if err != nil {
		return fail(err)
	}
	d, err := e.startDaemon(e.dataDir("calls"), []map[string]any{
		e.stdioServer("fxs"),
		{"name": "fxh", "url": fxURL, "quarantined": false},
	}, nil)
	if err != nil {
		return fail(err)
	}
	defer d.stop()
	if _, err := d.waitReady(30 * time.Second); err != nil {
		return fail(err)
	}
	if _, err := d.waitAllReady(2, time.Time{}, 30*time.Second); err != nil {
		return fail(err)
	}
	key := map[string]string{"X-API-Key": benchKey}
	var proxies []*client.Client
	defer func() {
		for _, c := range proxies {
			c.Close()
		}
	}()
	for range 16 {
		c, err := httpClient(d.url+"/mcp", key)
		if err != nil {
			return fail(fmt.Errorf("/mcp: %w", err))
		}
		proxies = append(proxies, c)
	}
	if err := callEcho(proxies[0], "fxs:echo")(context.Background()); err != nil {
		return fail(fmt.Errorf("call_tool through /mcp: %w", err))
	}
	stdio, err := mcpClient(mustStdio(client.NewStdioMCPClient(e.fixture(), nil, "--name", e.marker+"direct")))
	if err != nil {
		return fail(fmt.Errorf("direct stdio fixture: %w", err))
	}
	defer stdio.Close()
	var directs []*client.Client
	defer func() {
		for _, c := range directs {
			c.Close()
		}
	}()
	for range 16 {
		c, err := httpClient(fxURL, nil)
		if err != nil {
			return fail(fmt.Errorf("direct http fixture: %w", err))
		}
		directs = append(directs, c)
	}

	var rows []row
	if len(e.opts.only) == 0 || e.opts.only["B1"] {
		for _, tr := range []string{"stdio", "http"} {
			for _, conc := range []int{1, 16} {
				rows = append(rows, e.addedLatency(tr, conc, stdio, directs, proxies))
			}
		}
	}
	if len(e.opts.only) == 0 || e.opts.only["B2"] {
		rows = append(rows, e.throughput(proxies, directs))
	}
	return rows
}

func mustStdio(c *client.Client, err error) *client.Client {
	if err != nil {
		panic(err) // starting the fixture binary we just built
	}
	return c
}

// addedLatency measures direct and proxied calls alternately, run by run, and reports the
// median over runs of (proxied - direct) at p50 and at p99.
func (e *env) addedLatency(tr string, conc int, stdio *client.Client, directs, proxies []*client.Client) row {
	per := 500
	if conc > 1 {
		per = 100
	}
	if e.opts.quick {
		per /= 5
	}
	fig := fmt.Sprintf("added latency per call, %s upstream, %d client(s)", tr, conc)
	target := "p50 <= 1 ms, p99 <= 2 ms"
	limit50 := time.Millisecond
	if tr == "http" {
		target, limit50 = "p50 <= 0.5 ms, p99 <= 2 ms", 500*time.Microsecond
	}
	var direct, proxied []caller
	for i := range conc {
		if tr == "stdio" {
			// One stdio process, as the proxy has one: concurrent calls share it.
			direct = append(direct, callEcho(stdio, ""))
			proxied = append(proxied, callEcho(proxies[i], "fxs:echo"))
		} else {
			direct = append(direct, callEcho(directs[i], ""))
			proxied = append(proxied, callEcho(proxies[i], "fxh:echo"))
		}
	}
	var add50, add99, d50s, p50s []time.Duration
	for range e.opts.runs {
		dl, err := measure(direct, 20, per)
		if err != nil {
			return missing("B1", fig, target, cmdB1, "direct: "+err.Error())
		}
		pl, err := measure(proxied, 20, per)
		if err != nil {
			return missing("B1", fig, target, cmdB1, "proxied: "+err.Error())
		}
		d50, d99 := percentile(dl, 0.5), percentile(dl, 0.99)
		p50, p99 := percentile(pl, 0.5), percentile(pl, 0.99)
		add50 = append(add50, p50-d50)
		add99 = append(add99, p99-d99)
		d50s = append(d50s, d50)
		p50s = append(p50s, p50)
	}
	a50, a99 := medianDur(add50), medianDur(add99)
	return row{id: "B1", figure: fmt.Sprintf("%s (p50 direct %s, through /mcp %s)", fig, ms(medianDur(d50s)), ms(medianDur(p50s))),
		value: ms(a50), p99: ms(a99), target: target, pass: verdict(a50 <= limit50 && a99 <= 2*time.Millisecond),
		runs: len(add50), cmd: cmdB1}
}

// throughput is B2: 16 clients through /mcp calling the HTTP fixture's echo as fast as they
// can; the direct rate is measured the same way for comparison.
func (e *env) throughput(proxies, directs []*client.Client) row {
	dur := 3 * time.Second
	if e.opts.quick {
		dur = time.Second
	}
	rate := func(cs []*client.Client, name string) (float64, int) {
		var ok, bad atomic.Int64
		end := time.Now().Add(dur)
		var wg sync.WaitGroup
		for _, c := range cs {
			call := callEcho(c, name)
			wg.Go(func() {
				for time.Now().Before(end) {
					ctx, cancel := ctxTimeout(30 * time.Second)
					if err := call(ctx); err != nil {
						bad.Add(1)
					} else {
						ok.Add(1)
					}
					cancel()
				}
			})
		}
		wg.Wait()
		return float64(ok.Load()) / dur.Seconds(), int(bad.Load())
	}
	var rates, directRates []float64
	errs := 0
	for range e.opts.runs {
		dr, _ := rate(directs, "")
		pr, bad := rate(proxies, "fxh:echo")
		rates = append(rates, pr)
		directRates = append(directRates, dr)
		errs += bad
	}
	r := medianF(rates)
	return row{id: "B2", figure: fmt.Sprintf("tool-call throughput, 16 clients through /mcp to the HTTP fixture (direct: %.0f calls/s), %d errors", medianF(directRates), errs),
		value: fmt.Sprintf("%.0f calls/s", r), target: ">= 5,000 calls/s, 0 errors", pass: verdict(r >= 5000 && errs == 0),
		runs: len(rates), cmd: cmdB1}
}
