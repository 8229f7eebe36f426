package main

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// benchBig starts one daemon with 100 stdio fixture upstreams of 100 tools each (10,000
// tools) and measures on it: B8 (RSS), B3 (GET /api/v1/servers under load), B4 over HTTP
// (search latency) and B6 (restart_all).
func benchBig(e *env) []row {
	const n = 100
	e.progress("B3/B4/B6/B8: starting a daemon with %d stdio upstreams of 100 tools each", n)
	// The fixture has 11 tools of its own; 89 synthetic ones make 100 per server.
	d, err := e.startDaemon(e.dataDir("big"), e.fixtures("bg", n, "--tools", "89"), nil)
	fail := func(err error) []row {
		var rows []row
		for _, id := range []string{"B3", "B4", "B6", "B8"} {
			if e.wants(id) || len(e.opts.only) == 0 {
				rows = append(rows, missing(id, "100 upstreams, 10,000 tools", "", "go run ./test/bench -only "+id, err.Error()))
			}
		}
		return rows
	}
	if err != nil {
		return fail(err)
	}
	defer d.stop()
	if _, err := d.waitReady(30 * time.Second); err != nil {
		return fail(err)
	}
	if _, err := d.waitAllReady(n, time.Time{}, 2*time.Minute); err != nil {
		return fail(err)
	}
	var st struct {
		Tools struct {
			Total int `json:"total"`
		} `json:"tools"`
	}
	if _, err := d.do("GET", "/api/v1/status", nil, &st); err != nil {
		return fail(err)
	}
	e.progress("all %d ready with %d tools", n, st.Tools.Total)
	only := func(id string) bool { return len(e.opts.only) == 0 || e.opts.only[id] }
	var rows []row
	if only("B8") {
		rows = append(rows, e.bigRSS(d, st.Tools.Total))
	}
	if only("B3") {
		rows = append(rows, e.restLoad(d)...)
	}
	if only("B4") {
		rows = append(rows, e.searchHTTP(d, st.Tools.Total))
	}
	if only("B6") {
		rows = append(rows, e.restartAll(d, n)...)
	}
	return rows
}

// bigRSS is B8's second figure: RSS with 100 upstreams and their tools, settled.
func (e *env) bigRSS(d *daemon, tools int) row {
	time.Sleep(2 * time.Second)
	var kbs []float64
	var last memKB
	for range 3 {
		last = readMem(d.cmd.Process.Pid)
		kbs = append(kbs, float64(last.rss))
		time.Sleep(500 * time.Millisecond)
	}
	v := int64(medianF(kbs))
	e.heapProfile(d)
	return row{id: "B8", figure: fmt.Sprintf("daemon RSS with 100 stdio upstreams and %d tools, all ready (one start, 3 samples; %s; daemon CPU time since its start %s)", tools, last.split(), cpuTime(d.cmd.Process.Pid)),
		value: mb(v), target: "<= 60 MB", pass: verdict(mbOf(v) <= 60), runs: 1, cmd: "go run ./test/bench -only B8"}
}

// load runs conns keep-alive connections that GET path in a loop for dur (after warm-up)
// and returns every latency, the request rate and the count of non-200 answers or errors.
func load(addr, path string, conns int, warm, dur time.Duration) (lat []time.Duration, rate float64, bad int, err error) {
	clients := make([]*rawClient, conns)
	for i := range clients {
		if clients[i], err = dialRaw(addr); err != nil {
			return nil, 0, 0, err
		}
		defer clients[i].Close()
	}
	start := time.Now()
	measureFrom := start.Add(warm)
	end := measureFrom.Add(dur)
	var mu sync.Mutex
	var wg sync.WaitGroup
	count := 0
	for _, c := range clients {
		wg.Go(func() {
			var mine []time.Duration
			myBad, n := 0, 0
			for {
				t := time.Now()
				if t.After(end) {
					break
				}
				status, _, err := c.get(path)
				took := time.Since(t)
				if t.After(measureFrom) {
					n++
					mine = append(mine, took)
					if err != nil || status != 200 {
						myBad++
					}
				}
				if err != nil {
					break
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			bad += myBad
			count += n
			mu.Unlock()
		})
	}
	wg.Wait()
	return lat, float64(count) / dur.Seconds(), bad, nil
}

// restLoad is B3: GET /api/v1/servers (100 servers). The latency target is read with one
// keep-alive connection (with 32 connections in a closed loop the median is just 32 divided
// by the rate, Little's law), the rate target with 32 keep-alive connections.
func (e *env) restLoad(d *daemon) []row {
	const cmd = "go run ./test/bench -only B3"
	dur := 3 * time.Second
	if e.opts.quick {
		dur = time.Second
	}
	e.progress("B3 GET /api/v1/servers: 1 connection, then 32 connections, %d runs of %s each", e.opts.runs, dur)
	var p50s, p99s, loadedP50s []time.Duration
	var rates []float64
	bad := 0
	for range e.opts.runs {
		lat, _, b, err := load(d.addr, "/api/v1/servers", 1, 200*time.Millisecond, dur)
		if err != nil {
			return []row{missing("B3", "GET /api/v1/servers", "p50 <= 0.3 ms, >= 10,000 req/s", cmd, err.Error())}
		}
		p50s = append(p50s, percentile(lat, 0.5))
		p99s = append(p99s, percentile(lat, 0.99))
		bad += b
		lat, rate, b, err := load(d.addr, "/api/v1/servers", 32, 300*time.Millisecond, dur)
		if err != nil {
			return []row{missing("B3", "GET /api/v1/servers", "p50 <= 0.3 ms, >= 10,000 req/s", cmd, err.Error())}
		}
		loadedP50s = append(loadedP50s, percentile(lat, 0.5))
		rates = append(rates, rate)
		bad += b
	}
	p50, rate := medianDur(p50s), medianF(rates)
	return []row{{id: "B3", figure: fmt.Sprintf("GET /api/v1/servers, 100 servers: latency on 1 keep-alive connection; rate on 32 (p50 under that load %s), %d errors",
		ms(medianDur(loadedP50s)), bad),
		value: fmt.Sprintf("%s (p50), %.0f req/s", ms(p50), rate), p99: ms(medianDur(p99s)), target: "p50 <= 0.3 ms, >= 10,000 req/s",
		pass: verdict(p50 <= 300*time.Microsecond && rate >= 10000 && bad == 0), runs: len(p50s), cmd: cmd}}
}

// searchQueries are typical questions over the fixture's tools and synthetic catalogue.
var searchQueries = []string{
	"list invoices", "delete support tickets", "export payroll records as csv", "search deployment logs",
	"echo text back", "count sensor readings", "archive stale calendar events", "sync dns records",
	"synthetic_0042", "fetch a customer account by id", "summarize recent pull requests", "validate contract documents",
	"add two numbers", "sleep", "crea", "bg042:echo",
}

// searchHTTP is B4 over HTTP: GET /api/v1/tools?q=... one request at a time on one
// keep-alive connection, over 10,000 tools.
func (e *env) searchHTTP(d *daemon, tools int) row {
	const cmd = "go run ./test/bench -only B4"
	per := 2000
	if e.opts.quick {
		per = 300
	}
	e.progress("B4 HTTP search, %d runs of %d queries", e.opts.runs, per)
	paths := make([]string, len(searchQueries))
	for i, q := range searchQueries {
		paths[i] = "/api/v1/tools?limit=15&q=" + url.QueryEscape(q)
	}
	var p50s, p99s []time.Duration
	bad := 0
	for range e.opts.runs {
		c, err := dialRaw(d.addr)
		if err != nil {
			return missing("B4", "HTTP search", "p99 <= 2 ms", cmd, err.Error())
		}
		lat := make([]time.Duration, 0, per)
		for i := -100; i < per; i++ {
			t := time.Now()
			status, _, err := c.get(paths[(i+100)%len(paths)])
			took := time.Since(t)
			if err != nil {
				c.Close()
				return missing("B4", "HTTP search", "p99 <= 2 ms", cmd, err.Error())
			}
			if status != 200 {
				bad++
			}
			if i >= 0 {
				lat = append(lat, took)
			}
		}
		c.Close()
		p50s = append(p50s, percentile(lat, 0.5))
		p99s = append(p99s, percentile(lat, 0.99))
	}
	p99 := medianDur(p99s)
	return row{id: "B4", figure: fmt.Sprintf("GET /api/v1/tools?q=... over HTTP, %d tools on 100 servers, one connection (%d errors)", tools, bad),
		value: ms(medianDur(p50s)) + " (p50)", p99: ms(p99), target: "HTTP p99 <= 2 ms", pass: verdict(p99 <= 2*time.Millisecond && bad == 0),
		runs: len(p99s), cmd: cmd}
}

// restartAll is B6: POST restart_all with 100 stdio upstreams (100 tools each): how long
// the POST takes, how long until all are ready again with a new connection, and how many
// fixture processes beyond the 100 live ones remain once they are.
func (e *env) restartAll(d *daemon, n int) []row {
	const cmd = "go run ./test/bench -only B6"
	runs := min(e.opts.runs, 3)
	e.progress("B6 restart_all with %d stdio upstreams, %d runs", n, runs)
	var posts, alls, floors []time.Duration
	var cpus []float64 // the daemon's CPU time from the POST until all are ready, per run
	strays, straysLater := 0, 0
	for range runs {
		// The floor for these fixtures (100 tools each), one run before each restart.
		f, err := e.spawnFloor(n, "--tools", "89")
		if err != nil {
			return []row{missing("B6", "restart_all, 100 stdio upstreams", "POST at once, all ready <= 5 s", cmd, "floor: "+err.Error())}
		}
		floors = append(floors, f)
		cpu0, cpuOK := cpuSeconds(d.cmd.Process.Pid)
		t0 := time.Now()
		var res struct {
			Total      int `json:"total"`
			Successful int `json:"successful"`
		}
		code, err := d.do("POST", "/api/v1/servers/restart_all", nil, &res)
		post := time.Since(t0)
		if err == nil && (code != 200 || res.Successful != n) {
			err = fmt.Errorf("restart_all: %d, %d of %d successful", code, res.Successful, n)
		}
		if err != nil {
			return []row{missing("B6", "restart_all, 100 stdio upstreams", "POST at once, all ready <= 5 s", cmd, err.Error())}
		}
		all, err := d.waitAllReady(n, t0, 2*time.Minute)
		if err != nil {
			return []row{missing("B6", "restart_all, 100 stdio upstreams", "POST at once, all ready <= 5 s", cmd, err.Error())}
		}
		if cpu1, ok := cpuSeconds(d.cmd.Process.Pid); ok && cpuOK {
			cpus = append(cpus, cpu1-cpu0)
		}
		posts = append(posts, post)
		alls = append(alls, all.Sub(t0))
		strays = max(strays, len(processesWithArg(e.marker+"bg"))-n)
		// Old processes may take a moment to be reaped; give them one second.
		time.Sleep(time.Second)
		straysLater = max(straysLater, len(processesWithArg(e.marker+"bg"))-n)
	}
	post, all, floor := medianDur(posts), medianDur(alls), medianDur(floors)
	cpu := "unknown"
	if len(cpus) > 0 {
		slices.Sort(cpus)
		cpu = fmt.Sprintf("%.2f s", cpus[len(cpus)/2])
	}
	return []row{
		{id: "B6", figure: "restart_all, 100 stdio upstreams: the POST's answer time", value: ms(post), p99: "max " + ms(slicesMax(posts)),
			target: "answers at once (<= 100 ms)", pass: verdict(post <= 100*time.Millisecond), runs: len(posts), cmd: cmd},
		{id: "B6", figure: fmt.Sprintf("restart_all, 100 stdio upstreams of 100 tools: all ready again (extra processes when all ready: %d, 1 s later: %d; daemon CPU per restart %s)", max(strays, 0), max(straysLater, 0), cpu),
			value: ms(all), p99: "max " + ms(slicesMax(alls)), target: "<= 5 s, 0 stray processes",
			pass: verdict(all <= 5*time.Second && straysLater <= 0), runs: len(alls), cmd: cmd},
		{id: "B6", figure: "restart_all, 100 stdio upstreams of 100 tools: all ready again, over the floor of the same fixtures started directly (" + ms(floor) + ", one run before each restart)",
			value: ratio(all, floor), target: "<= 1.25x", pass: verdict(floor > 0 && float64(all) <= 1.25*float64(floor)), runs: len(alls), cmd: cmd},
	}
}

// heapProfile asks the daemon for a heap profile when the bench runs with
// MCPPROXY_HEAP_PROFILE set (the daemon inherits it and writes the file on SIGUSR1), and
// waits for the file, so B8's memory can be explained with go tool pprof.
func (e *env) heapProfile(d *daemon) {
	path := os.Getenv("MCPPROXY_HEAP_PROFILE")
	if path == "" {
		return
	}
	_ = os.Remove(path)
	if err := d.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		e.progress("heap profile: %v", err)
		return
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			e.progress("heap profile written to %s", path)
			return
		}
	}
	e.progress("heap profile: no file at %s after 10 s", path)
}

// cpuTime is the user+system CPU time a process has used, from /proc/<pid>/stat: unlike
// the wall time of a start, it hardly depends on what else runs on the machine.
func cpuTime(pid int) string {
	sec, ok := cpuSeconds(pid)
	if !ok {
		return "unknown"
	}
	return fmt.Sprintf("%.2f s", sec)
}

// cpuSeconds is cpuTime as a number; false when /proc cannot tell.
func cpuSeconds(pid int) (float64, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces; the fields after its ')' are fixed.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(f) < 13 {
		return 0, false
	}
	var user, sys int64
	fmt.Sscan(f[11], &user)
	fmt.Sscan(f[12], &sys)
	const ticks = 100 // USER_HZ
	return float64(user+sys) / ticks, true
}
