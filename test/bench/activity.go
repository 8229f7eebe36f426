package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const cmdB11 = "go run ./test/bench -only B11"

// benchActivity is B11, the activity log's cost: B1's added latency through /mcp with
// recording on and off (MCPPROXY_ACTIVITY=off) in one run, alternating; records per second
// sustained by 16 clients with none dropped; and GET /api/v1/activity's p99 once the log
// holds 100,000 records (a first page, and a filter that matches nothing, which reads them
// all).
func benchActivity(e *env) []row {
	e.progress("B11 activity log: recording on vs off, records/s, listing with 100,000 records")
	fig := "added latency per call, HTTP upstream, 1 client, recording on vs off"
	fail := func(err error) []row { return []row{missing("B11", fig, "on - off within noise", cmdB11, err.Error())} }
	fxURL, err := e.startFixtureHTTP()
	if err != nil {
		return fail(err)
	}
	servers := []map[string]any{{"name": "fxh", "url": fxURL, "quarantined": false}}
	on, err := e.startDaemon(e.dataDir("activity-on"), servers, map[string]any{"activity": map[string]any{"max_records": 100000}})
	if err != nil {
		return fail(err)
	}
	defer on.stop()
	off, err := e.startDaemonEnv(e.dataDir("activity-off"), servers, nil, []string{"MCPPROXY_ACTIVITY=off"})
	if err != nil {
		return fail(err)
	}
	defer off.stop()
	for _, d := range []*daemon{on, off} {
		if _, err := d.waitReady(30 * time.Second); err != nil {
			return fail(err)
		}
		if _, err := d.waitAllReady(1, time.Time{}, 30*time.Second); err != nil {
			return fail(err)
		}
	}
	direct, err := dialLeanHTTP(fxURL, "")
	if err != nil {
		return fail(err)
	}
	defer direct.Close()
	var clients []*leanHTTP
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	dial := func(d *daemon) (*leanHTTP, error) {
		c, err := dialLeanHTTP(d.url+"/mcp", benchKey)
		if err == nil {
			clients = append(clients, c)
		}
		return c, err
	}
	cOn, err := dial(on)
	if err != nil {
		return fail(err)
	}
	cOff, err := dial(off)
	if err != nil {
		return fail(err)
	}

	// 1. Added latency, on and off, run by run.
	per := 1000
	if e.opts.quick {
		per = 200
	}
	var addOn, addOff, on99, off99 []time.Duration
	for range e.opts.runs {
		dl, err := measure([]caller{directEcho(direct.call)}, 20, per)
		if err != nil {
			return fail(err)
		}
		pOn, err := measure([]caller{proxyEcho(cOn, "fxh")}, 20, per)
		if err != nil {
			return fail(err)
		}
		pOff, err := measure([]caller{proxyEcho(cOff, "fxh")}, 20, per)
		if err != nil {
			return fail(err)
		}
		d50, d99 := percentile(dl, 0.5), percentile(dl, 0.99)
		addOn = append(addOn, percentile(pOn, 0.5)-d50)
		addOff = append(addOff, percentile(pOff, 0.5)-d50)
		on99 = append(on99, percentile(pOn, 0.99)-d99)
		off99 = append(off99, percentile(pOff, 0.99)-d99)
	}
	aOn, aOff := medianDur(addOn), medianDur(addOff)
	diff := aOn - aOff
	rows := []row{{id: "B11", figure: fmt.Sprintf("%s (added p50 on %s, off %s; p99 on %s, off %s)", fig, ms(aOn), ms(aOff), ms(medianDur(on99)), ms(medianDur(off99))),
		value: ms(diff), p99: ms(medianDur(on99) - medianDur(off99)), target: "on - off <= 0.1 ms (within noise)",
		pass: verdict(diff <= 100*time.Microsecond), runs: len(addOn), cmd: cmdB11}}

	// 2. Records per second: 16 clients as fast as they can for a while; the rate counts
	// the records written from the first call until the last record is on disk.
	var cs []caller
	for range 16 {
		c, err := dial(on)
		if err != nil {
			return append(rows, missing("B11", "activity records/s sustained", ">= 5,000 records/s, 0 dropped", cmdB11, err.Error()))
		}
		cs = append(cs, proxyEcho(c, "fxh"))
	}
	written0, _, err := activityCounts(on)
	if err != nil {
		return append(rows, missing("B11", "activity records/s sustained", ">= 5,000 records/s, 0 dropped", cmdB11, err.Error()))
	}
	dur := 5 * time.Second
	if e.opts.quick {
		dur = 2 * time.Second
	}
	start := time.Now()
	calls, bad := hammer(cs, dur)
	var written, dropped float64
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if written, dropped, err = activityCounts(on); err != nil || written-written0+dropped >= float64(calls) {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling a counter the daemon owns; bounded above
	}
	took := time.Since(start)
	rate := (written - written0) / took.Seconds()
	rows = append(rows, row{id: "B11", figure: fmt.Sprintf("activity records/s sustained, 16 clients for %s (%d calls at %.0f calls/s, %d errors, %.0f dropped, all on disk after %s)",
		dur, calls, float64(calls)/dur.Seconds(), bad, dropped, took.Round(time.Millisecond)),
		value: fmt.Sprintf("%.0f records/s", rate), target: "no record lost at 5,000 calls/s",
		pass: verdict(dropped == 0 && written-written0 >= float64(calls)), runs: 1, cmd: cmdB11})

	// 3. The listing with 100,000 records.
	for total := written; total < 100000; {
		n, _ := hammer(cs, time.Second)
		if n == 0 {
			break
		}
		total += float64(n)
	}
	waitWritten(on, 100000, 120*time.Second)
	held, _, _ := activityCounts(on)
	held = min(held, 100000) // max_records
	for _, q := range []struct{ name, query, target string }{
		{"GET /api/v1/activity (first page of 100) with 100,000 records", "", "p99 <= 50 ms"},
		{"GET /api/v1/activity?status=refused (matches none: reads all 100,000)", "?status=refused", "p99 <= 2 s"},
	} {
		n := 200
		if q.query != "" {
			n = 10
		}
		lat, err := timeGets(on, "/api/v1/activity"+q.query, n)
		if err != nil {
			rows = append(rows, missing("B11", q.name, q.target, cmdB11, err.Error()))
			continue
		}
		limit := 50 * time.Millisecond
		if q.query != "" {
			limit = 2 * time.Second
		}
		p99 := percentile(lat, 0.99)
		rows = append(rows, row{id: "B11", figure: fmt.Sprintf("%s (the log holds %.0f)", q.name, held), value: ms(percentile(lat, 0.5)), p99: ms(p99), target: q.target,
			pass: verdict(p99 <= limit), runs: 1, cmd: cmdB11})
	}
	return rows
}

// hammer runs the callers as fast as they can for dur and counts the calls that succeeded
// and those that failed.
func hammer(cs []caller, dur time.Duration) (ok, bad int) {
	var okN, badN atomic.Int64
	end := time.Now().Add(dur)
	var wg sync.WaitGroup
	for _, call := range cs {
		wg.Go(func() {
			for time.Now().Before(end) {
				if call() != nil {
					badN.Add(1)
				} else {
					okN.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(okN.Load()), int(badN.Load())
}

// activityCounts reads the activity counters from /metrics.
func activityCounts(d *daemon) (written, dropped float64, err error) {
	req, _ := http.NewRequest("GET", d.url+"/metrics", nil)
	req.Header.Set("X-API-Key", benchKey)
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "mcpproxy_activity_records_written_total":
			written = v
		case "mcpproxy_activity_records_dropped_total":
			dropped = v
		}
	}
	return written, dropped, sc.Err()
}

func waitWritten(d *daemon, n float64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if w, _, err := activityCounts(d); err != nil || w >= n {
			return
		}
		time.Sleep(10 * time.Millisecond) // polling a counter the daemon owns; bounded above
	}
}

// timeGets times n sequential GETs of path.
func timeGets(d *daemon, path string, n int) ([]time.Duration, error) {
	var lat []time.Duration
	for range n {
		req, _ := http.NewRequest("GET", d.url+path, nil)
		req.Header.Set("X-API-Key", benchKey)
		t := time.Now()
		resp, err := d.client.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		lat = append(lat, time.Since(t))
	}
	return lat, nil
}
