package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const cmdB1 = "go run ./test/bench -only B1,B2"

// caller makes one tool call and says whether it failed.
type caller func() error

const echoArgs = `{"text":"hello"}`

// directEcho calls the fixture's echo tool.
func directEcho(call func(name, args string) error) caller {
	return func() error { return call("echo", echoArgs) }
}

// proxyEcho calls <server>:echo through the proxy's call_tool tool.
func proxyEcho(l *leanHTTP, server string) caller {
	args := `{"name":"` + server + `:echo","arguments":` + echoArgs + `}`
	return func() error { return l.call("call_tool", args) }
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
				t := time.Now()
				err := call()
				took := time.Since(t)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
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
	var proxies, directs []*leanHTTP
	defer func() {
		for _, c := range append(proxies, directs...) {
			c.Close()
		}
	}()
	for range 16 {
		c, err := dialLeanHTTP(d.url+"/mcp", benchKey)
		if err != nil {
			return fail(fmt.Errorf("/mcp: %w", err))
		}
		proxies = append(proxies, c)
		if c, err = dialLeanHTTP(fxURL, ""); err != nil {
			return fail(fmt.Errorf("direct http fixture: %w", err))
		}
		directs = append(directs, c)
	}
	if err := proxyEcho(proxies[0], "fxs")(); err != nil {
		return fail(fmt.Errorf("call_tool through /mcp: %w", err))
	}
	stdio, err := startLeanStdio(e.fixture(), "--name", e.marker+"direct")
	if err != nil {
		return fail(fmt.Errorf("direct stdio fixture: %w", err))
	}
	defer stdio.Close()

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

// addedLatency measures direct and proxied calls alternately, run by run, and reports the
// median over runs of (proxied - direct) at p50 and at p99.
func (e *env) addedLatency(tr string, conc int, stdio *leanStdio, directs, proxies []*leanHTTP) row {
	per := 1000
	if conc > 1 {
		per = 200
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
			direct = append(direct, directEcho(stdio.call))
			proxied = append(proxied, proxyEcho(proxies[i], "fxs"))
		} else {
			direct = append(direct, directEcho(directs[i].call))
			proxied = append(proxied, proxyEcho(proxies[i], "fxh"))
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
func (e *env) throughput(proxies, directs []*leanHTTP) row {
	dur := 3 * time.Second
	if e.opts.quick {
		dur = time.Second
	}
	rate := func(calls []caller) (float64, int) {
		var ok, bad atomic.Int64
		end := time.Now().Add(dur)
		var wg sync.WaitGroup
		for _, call := range calls {
			wg.Go(func() {
				for time.Now().Before(end) {
					if err := call(); err != nil {
						bad.Add(1)
					} else {
						ok.Add(1)
					}
				}
			})
		}
		wg.Wait()
		return float64(ok.Load()) / dur.Seconds(), int(bad.Load())
	}
	var direct, proxied []caller
	for i := range proxies {
		direct = append(direct, directEcho(directs[i].call))
		proxied = append(proxied, proxyEcho(proxies[i], "fxh"))
	}
	var rates, directRates []float64
	errs := 0
	for range e.opts.runs {
		dr, _ := rate(direct)
		pr, bad := rate(proxied)
		rates = append(rates, pr)
		directRates = append(directRates, dr)
		errs += bad
	}
	r := medianF(rates)
	return row{id: "B2", figure: fmt.Sprintf("tool-call throughput, 16 clients through /mcp to the HTTP fixture (direct: %.0f calls/s), %d errors", medianF(directRates), errs),
		value: fmt.Sprintf("%.0f calls/s", r), target: ">= 5,000 calls/s, 0 errors", pass: verdict(r >= 5000 && errs == 0),
		runs: len(rates), cmd: cmdB1}
}
