package main

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const cmdB10 = "go run ./test/bench -only B10"

// teardownServers is how many servers B10 applies and removes.
const teardownServers = 10000

// benchTearDown is B10: GET /api/v1/status latency while 10,000 servers are applied (each
// an enabled remote server at a closed port: an upstream actor that dials, fails and backs
// off, with no process or open socket) and while they are all removed again. One
// keep-alive connection asks for the status in a closed loop from before the apply until
// the last server is gone.
func benchTearDown(e *env) []row {
	runs := min(e.opts.runs, 3)
	if e.opts.quick {
		runs = 1
	}
	e.progress("B10 status latency while %d servers are applied and torn down, %d runs", teardownServers, runs)
	fail := func(err error) []row {
		return []row{missing("B10", fmt.Sprintf("GET /api/v1/status during the tear-down of %d servers", teardownServers),
			"p99 <= 100 ms, every answer 200", cmdB10, err.Error())}
	}
	var res []tearDownResult
	for range runs {
		r, err := e.tearDownRun(teardownServers)
		if err != nil {
			return fail(err)
		}
		res = append(res, r)
	}
	var upP50, upP99, downP50, downP99, ups, downs, upMax, downMax []time.Duration
	badUp, badDown, nUp, nDown := 0, 0, 0, 0
	for _, r := range res {
		nUp, nDown = nUp+len(r.up), nDown+len(r.down)
		upP50, upP99 = append(upP50, percentile(r.up, 0.5)), append(upP99, percentile(r.up, 0.99))
		downP50, downP99 = append(downP50, percentile(r.down, 0.5)), append(downP99, percentile(r.down, 0.99))
		ups, downs = append(ups, r.upTook), append(downs, r.downTook)
		upMax, downMax = append(upMax, slicesMax(r.up)), append(downMax, slicesMax(r.down))
		badUp, badDown = badUp+r.badUp, badDown+r.badDown
	}
	// A closed loop on one connection gives a stall one slow sample, so the slowest answer
	// is shown besides the percentiles, and the target is on it.
	p99, slowest := medianDur(downP99), medianDur(downMax)
	return []row{
		{id: "B10", figure: fmt.Sprintf("GET /api/v1/status, one connection in a closed loop, during the tear-down of %d running servers (the apply that removes them -> none left: %s; %d answers, %d not 200; slowest %s)",
			teardownServers, ms(medianDur(downs)), nDown, badDown, ms(medianDur(downMax))),
			value: ms(medianDur(downP50)) + " (p50)", p99: ms(p99), target: "every answer <= 100 ms and 200",
			pass: verdict(slowest <= 100*time.Millisecond && badDown == 0), runs: len(res), cmd: cmdB10},
		{id: "B10", figure: fmt.Sprintf("GET /api/v1/status, one connection in a closed loop, while %d servers are applied and make their first dial (apply -> all failed once: %s; %d answers, %d not 200; slowest %s)",
			teardownServers, ms(medianDur(ups)), nUp, badUp, ms(medianDur(upMax))),
			value: ms(medianDur(upP50)) + " (p50)", p99: ms(medianDur(upP99)), target: "every answer 200",
			pass: verdict(badUp == 0), runs: len(res), cmd: cmdB10},
	}
}

// tearDownResult is one B10 run: the status latencies while servers come up and while they
// are torn down, the answers that were not 200, and how long each phase took.
type tearDownResult struct {
	up, down         []time.Duration
	badUp, badDown   int
	upTook, downTook time.Duration
}

// statusLoop asks for the status on one keep-alive connection until stopped, recording each
// latency in the phase current when the request was sent.
type statusLoop struct {
	phase atomic.Int32 // 0: servers coming up, 1: tear-down
	total atomic.Int64 // servers.total of the last answer; -1 before the first
	stop  chan struct{}
	wg    sync.WaitGroup

	mu   sync.Mutex
	lat  [2][]time.Duration
	bad  [2]int
	fail error
}

func startStatusLoop(addr string) (*statusLoop, error) {
	c, err := dialRaw(addr)
	if err != nil {
		return nil, err
	}
	l := &statusLoop{stop: make(chan struct{})}
	l.total.Store(-1)
	req := "GET /api/v1/status HTTP/1.1\r\nHost: " + addr + "\r\nX-API-Key: " + benchKey + "\r\n\r\n"
	l.wg.Go(func() {
		defer c.Close()
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			ph := l.phase.Load()
			c.body = c.body[:0]
			t := time.Now()
			status, _, _, err := c.roundTrip(req, nil, true)
			took := time.Since(t)
			l.mu.Lock()
			l.lat[ph] = append(l.lat[ph], took)
			if status != 200 || err != nil {
				l.bad[ph]++
			}
			l.mu.Unlock()
			if err != nil {
				// The connection is gone (a 504 keeps it); dial again.
				c.Close()
				if c, err = dialRaw(addr); err != nil {
					l.mu.Lock()
					l.fail = err
					l.mu.Unlock()
					return
				}
				continue
			}
			var st struct {
				Servers struct {
					Total int64 `json:"total"`
				} `json:"servers"`
			}
			if status == 200 && json.Unmarshal(c.body, &st) == nil {
				l.total.Store(st.Servers.Total)
			}
		}
	})
	return l, nil
}

func (l *statusLoop) halt() {
	close(l.stop)
	l.wg.Wait()
}

func (e *env) tearDownRun(n int) (tearDownResult, error) {
	var res tearDownResult
	d, err := e.startDaemon(e.dataDir("teardown"), []map[string]any{}, nil)
	if err != nil {
		return res, err
	}
	defer d.stop()
	if _, err := d.waitReady(30 * time.Second); err != nil {
		return res, err
	}
	closed, err := freeAddr() // free a moment ago: nothing listens there
	if err != nil {
		return res, err
	}
	list := make([]map[string]any, n)
	for i := range list {
		list[i] = map[string]any{"name": fmt.Sprintf("bulk-%05d", i), "url": "http://" + closed + "/mcp", "quarantined": false}
	}
	loop, err := startStatusLoop(d.addr)
	if err != nil {
		return res, err
	}
	stopped := false
	defer func() {
		if !stopped {
			loop.halt()
		}
	}()

	t0 := time.Now()
	if code, err := d.do("POST", "/api/v1/config/apply", map[string]any{"api_key": benchKey, "mcpServers": list}, nil); err != nil || code != 200 {
		return res, fmt.Errorf("apply %d servers: %d %v", n, code, err)
	}
	// Every server has failed its first dial: all of them run an actor (none waits for a
	// start slot), so the tear-down stops n actors.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var out struct {
			Servers []struct {
				RetryCount int `json:"retry_count"`
			} `json:"servers"`
		}
		failed := 0
		if code, err := d.do("GET", "/api/v1/servers", nil, &out); err == nil && code == 200 {
			for _, s := range out.Servers {
				if s.RetryCount > 0 {
					failed++
				}
			}
		}
		if failed == n {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("only %d of %d servers failed their first dial in 5 minutes", failed, n)
		}
		time.Sleep(250 * time.Millisecond) // a poll interval
	}
	res.upTook = time.Since(t0)

	loop.total.Store(-1)
	loop.phase.Store(1)
	t1 := time.Now()
	if code, err := d.do("POST", "/api/v1/config/apply", map[string]any{"api_key": benchKey, "mcpServers": []any{}}, nil); err != nil || code != 200 {
		return res, fmt.Errorf("remove %d servers: %d %v", n, code, err)
	}
	deadline = time.Now().Add(5 * time.Minute)
	for loop.total.Load() != 0 {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("%d servers still there 5 minutes after their removal", loop.total.Load())
		}
		time.Sleep(time.Millisecond) // a poll interval; the loop sees the end
	}
	res.downTook = time.Since(t1)
	loop.halt()
	stopped = true
	if loop.fail != nil {
		return res, loop.fail
	}
	res.up, res.down = loop.lat[0], loop.lat[1]
	res.badUp, res.badDown = loop.bad[0], loop.bad[1]
	return res, nil
}
