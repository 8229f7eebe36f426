package main

import (
	"fmt"
	"time"
)

const cmdB7 = "go run ./test/bench -only B7"

// fixtures returns n stdio fixture entries named prefix000, prefix001, ...
func (e *env) fixtures(prefix string, n int, extra ...string) []map[string]any {
	list := make([]map[string]any, n)
	for i := range n {
		list[i] = e.stdioServer(fmt.Sprintf("%s%03d", prefix, i), extra...)
	}
	return list
}

// benchStartup is B7 (process start -> /readyz 200 with 100 configured stdio servers) and
// B6's start figure (process start -> all 100 ready), on one data dir that a first start
// (not counted) created. After each run the daemon gets SIGTERM and /proc must hold none
// of its fixtures.
//
// Each counted run is preceded by one run of the floor (spawnFloor), so that the two are
// measured interleaved, under the same load.
func (e *env) startupRuns() (ready, allReady, floors []time.Duration, strays int, err error) {
	dir := e.dataDir("startup")
	servers := e.fixtures("st", 100)
	for i := -1; i < e.opts.runs; i++ {
		if i >= 0 {
			f, err := e.spawnFloor(100)
			if err != nil {
				return nil, nil, nil, 0, fmt.Errorf("floor: %w", err)
			}
			floors = append(floors, f)
		}
		var d *daemon
		if i == -1 {
			d, err = e.startDaemon(dir, servers, nil)
		} else {
			d, err = e.startDaemon(dir, nil, nil)
		}
		if err != nil {
			return nil, nil, nil, 0, err
		}
		t0 := time.Now()
		at, err := d.waitReady(30 * time.Second)
		if err != nil {
			d.stop()
			return nil, nil, nil, 0, err
		}
		all, err := d.waitAllReady(100, time.Time{}, 60*time.Second)
		d.stop()
		if err != nil {
			return nil, nil, nil, 0, err
		}
		if i >= 0 {
			ready = append(ready, at.Sub(t0))
			allReady = append(allReady, all.Sub(t0))
		}
		strays = max(strays, len(processesWithArg(e.marker+"st")))
	}
	return ready, allReady, floors, strays, nil
}

func benchStartup(e *env) []row {
	e.progress("B7 start-up with 100 stdio servers, B6 start -> all ready (%d runs)", e.opts.runs)
	ready, all, floors, strays, err := e.startupRuns()
	if err != nil {
		return []row{
			missing("B7", "start-up: process start -> /readyz 200, 100 configured servers", "<= 100 ms", cmdB7, err.Error()),
			missing("B6", "start with 100 stdio upstreams -> all ready", "<= 2 s", cmdB7, err.Error()),
		}
	}
	r, a, f := medianDur(ready), medianDur(all), medianDur(floors)
	return []row{
		{id: "B7", figure: "start-up: process start -> /readyz 200, 100 configured stdio servers", value: ms(r),
			p99: "max " + ms(slicesMax(ready)), target: "<= 100 ms", pass: verdict(r <= 100*time.Millisecond), runs: len(ready), cmd: cmdB7},
		{id: "B6", figure: fmt.Sprintf("start with 100 stdio upstreams -> all ready (then SIGTERM: %d processes left)", strays), value: ms(a),
			p99: "max " + ms(slicesMax(all)), target: "<= 2 s, 0 left", pass: verdict(a <= 2*time.Second && strays == 0), runs: len(all), cmd: cmdB7},
		{id: "B6", figure: "floor: the same 100 fixtures started directly, initialize + tools/list answered (no proxy; one run before each start above)",
			value: ms(f), p99: "max " + ms(slicesMax(floors)), runs: len(floors), cmd: cmdB7},
		{id: "B6", figure: "start with 100 stdio upstreams -> all ready, over the floor (medians)", value: ratio(a, f),
			target: "<= 1.25x", pass: verdict(f > 0 && float64(a) <= 1.25*float64(f)), runs: len(all), cmd: cmdB7},
	}
}

func slicesMax(d []time.Duration) time.Duration {
	var m time.Duration
	for _, v := range d {
		m = max(m, v)
	}
	return m
}

// benchIdleRSS is B8's first figure: the daemon's RSS idle with no servers, after start
// and a few API calls, once it has settled for a second.
func benchIdleRSS(e *env) []row {
	const cmd = "go run ./test/bench -only B8"
	e.progress("B8 idle RSS (%d runs)", e.opts.runs)
	var kbs []float64
	var last memKB
	for range e.opts.runs {
		d, err := e.startDaemon(e.dataDir("idle"), []map[string]any{}, nil)
		if err != nil {
			return []row{missing("B8", "RSS idle, 0 servers", "<= 25 MB", cmd, err.Error())}
		}
		if _, err := d.waitReady(30 * time.Second); err != nil {
			d.stop()
			return []row{missing("B8", "RSS idle, 0 servers", "<= 25 MB", cmd, err.Error())}
		}
		for _, p := range []string{"/api/v1/status", "/api/v1/servers", "/api/v1/tools?q=x", "/api/v1/config"} {
			_, _ = d.do("GET", p, nil, nil)
		}
		time.Sleep(time.Second)
		last = readMem(d.cmd.Process.Pid)
		kbs = append(kbs, float64(last.rss))
		d.stop()
	}
	v := int64(medianF(kbs))
	return []row{{id: "B8", figure: "daemon RSS idle, 0 servers (VmRSS, children excluded; last run: " + last.split() + ")", value: mb(v),
		target: "<= 25 MB", pass: verdict(mbOf(v) <= 25), runs: len(kbs), cmd: cmd}}
}
