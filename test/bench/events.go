package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const cmdB5 = "go run ./test/bench -only B5"

// arrival is one servers.changed event as a subscriber read it.
type arrival struct {
	sub  int
	at   time.Time
	data string
}

// subscribeEvents opens GET /events with net/http (which undoes the chunked encoding) and
// forwards every servers.changed event to out until ctx ends. It returns once the answer's
// headers arrived, so the subscription is in place.
func subscribeEvents(ctx context.Context, c *http.Client, base string, idx int, out chan<- arrival) error {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", benchKey)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		return fmt.Errorf("GET /events: %d", resp.StatusCode)
	}
	go func() {
		defer resp.Body.Close()
		r := bufio.NewReaderSize(resp.Body, 16<<10)
		// r3labs writes the fields of an event as id, data, event; the blank line ends it.
		var name, data string
		var at time.Time
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			if at.IsZero() && line != "" && !strings.HasPrefix(line, ":") {
				at = time.Now()
			}
			switch {
			case strings.HasPrefix(line, "event:"):
				name = strings.TrimSpace(line[len("event:"):])
			case strings.HasPrefix(line, "data:"):
				data = line
			case line == "":
				if name == "servers.changed" {
					select {
					case out <- arrival{sub: idx, at: at, data: data}:
					case <-ctx.Done():
						return
					}
				}
				name, data, at = "", "", time.Time{}
			}
		}
	}()
	return nil
}

// stalledSubscriber opens /events on a raw connection with a small receive buffer and
// never reads from it: a browser tab that froze.
func stalledSubscriber(addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_, err = io.WriteString(c, "GET /events HTTP/1.1\r\nHost: "+addr+"\r\nX-API-Key: "+benchKey+"\r\nAccept: text/event-stream\r\n\r\n")
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// benchFanOut is B5: 1,000 /events subscribers and one stalled one; each round flips a
// server's quarantine flag (one servers.changed event) and times its arrival at every
// subscriber from just before the POST. The daemon's RSS is read with the subscribers
// connected.
func benchFanOut(e *env) []row {
	const subs = 1000
	target := "p99 <= 30 ms to all 1,000"
	e.progress("B5 event fan-out to %d subscribers", subs)
	d, err := e.startDaemon(e.dataDir("events"), []map[string]any{e.stdioServer("ev0"), e.stdioServer("ev1")}, nil)
	if err != nil {
		return []row{missing("B5", "event fan-out", target, cmdB5, err.Error())}
	}
	defer d.stop()
	if _, err := d.waitReady(30 * time.Second); err != nil {
		return []row{missing("B5", "event fan-out", target, cmdB5, err.Error())}
	}
	if _, err := d.waitAllReady(2, time.Time{}, 30*time.Second); err != nil {
		return []row{missing("B5", "event fan-out", target, cmdB5, err.Error())}
	}
	time.Sleep(time.Second)
	baseRSS := rssKB(d.cmd.Process.Pid)
	baseGo, _ := d.goMem()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: subs + 10, MaxConnsPerHost: 0}}
	defer hc.CloseIdleConnections()
	stalled, err := stalledSubscriber(d.addr)
	if err != nil {
		return []row{missing("B5", "event fan-out", target, cmdB5, err.Error())}
	}
	defer stalled.Close()
	arrivals := make(chan arrival, 4*subs)
	var wg sync.WaitGroup
	errs := make(chan error, subs)
	for i := range subs {
		wg.Go(func() {
			if err := subscribeEvents(ctx, hc, d.url, i, arrivals); err != nil {
				errs <- err
			}
		})
		if i%50 == 49 {
			wg.Wait() // connect in batches, not 1,000 SYNs at once
		}
	}
	wg.Wait()
	select {
	case err := <-errs:
		return []row{missing("B5", "event fan-out", target, cmdB5, err.Error())}
	default:
	}

	warm, measured := 30, e.opts.runs
	if e.opts.quick {
		warm = 5
	}
	var p99s, p50s, maxes []time.Duration
	quarantined := false
	for round := 0; round < warm+measured; round++ {
		quarantined = !quarantined
		reason := `"reason":"quarantined"`
		if !quarantined {
			reason = `"reason":"unquarantined"`
		}
		t0 := time.Now()
		code, err := d.do("POST", "/api/v1/servers/ev0/quarantine", map[string]bool{"quarantined": quarantined}, nil)
		if err == nil && code != 200 {
			err = fmt.Errorf("quarantine: %d", code)
		}
		if err != nil {
			return []row{missing("B5", "event fan-out", target, cmdB5, err.Error())}
		}
		seen := make(map[int]bool, subs)
		lat := make([]time.Duration, 0, subs)
		timeout := time.After(20 * time.Second)
		for len(seen) < subs {
			select {
			case a := <-arrivals:
				if !seen[a.sub] && strings.Contains(a.data, reason) && strings.Contains(a.data, `"ev0"`) {
					seen[a.sub] = true
					lat = append(lat, a.at.Sub(t0))
				}
			case <-timeout:
				return []row{missing("B5", "event fan-out", target, cmdB5,
					fmt.Sprintf("round %d: only %d of %d subscribers got the event within 20 s", round, len(seen), subs))}
			}
		}
		if round >= warm {
			p50s = append(p50s, percentile(lat, 0.5))
			p99s = append(p99s, percentile(lat, 0.99))
			maxes = append(maxes, percentile(lat, 1))
		}
	}
	mem := readMem(d.cmd.Process.Pid)
	rss := mem.rss
	p99 := medianDur(p99s)
	perSub := float64(rss-baseRSS) * 1024 / 1000 / subs // KB (10^3 bytes) per subscriber
	nowGo, _ := d.goMem()
	split := fmt.Sprintf("Go heap in use %.1f KB, stacks %.1f KB, %.1f goroutines", (nowGo.heap-baseGo.heap)/1000/subs,
		(nowGo.stack-baseGo.stack)/1000/subs, (nowGo.goroutines-baseGo.goroutines)/subs)
	churn := e.churn(d, subs, arrivals)
	return append([]row{
		{id: "B5", figure: fmt.Sprintf("one servers.changed to %d /events subscribers, 1 stalled subscriber present (max %s)", subs, ms(slicesMax(maxes))),
			value: ms(medianDur(p50s)) + " (p50)", p99: ms(p99), target: target, pass: verdict(p99 <= 30*time.Millisecond), runs: len(p99s), cmd: cmdB5},
		{id: "B5", figure: fmt.Sprintf("daemon RSS with %d subscribers, 2 upstreams (%s; %s before they connected)", subs, mem.split(), mb(baseRSS)),
			value: mb(rss), target: "<= 50 MB", pass: verdict(mbOf(rss) <= 50), runs: 1, cmd: cmdB5},
		{id: "B5", figure: fmt.Sprintf("daemon RSS per /events subscriber (RSS with %d subscribers less RSS before they connected, over %d; per subscriber: %s)", subs, subs, split),
			value: fmt.Sprintf("%.1f KB", perSub), target: "<= 15 KB", pass: verdict(perSub <= 15), runs: 1, cmd: cmdB5},
	}, churn...)
}

// churn is B5's steady-churn figures: changes of ev1's enabled flag posted every 200 ms
// (each POST answered before the next is due) while the 1,000 subscribers read; the latency
// of each change is from just before its POST until a subscriber reads its servers.changed
// (enabled or disabled), over every change and subscriber; and the disable POSTs' answer
// times. A subscriber's n-th such event is the n-th change: the hub keeps each stream in
// order, and a missing one is counted as missed.
func (e *env) churn(d *daemon, subs int, arrivals <-chan arrival) []row {
	changes := 50
	if e.opts.quick {
		changes = 10
	}
	const gap = 200 * time.Millisecond
	fail := func(err error) []row {
		return []row{missing("B5", "steady churn", "p99 <= 50 ms", cmdB5, err.Error())}
	}
	// Drain what the rounds above left (their events have all arrived by now).
	for drained := false; !drained; {
		select {
		case <-arrivals:
		default:
			drained = true
		}
	}
	// Read by the loop below while the poster writes them: atomic (each is written before
	// its POST, so before any subscriber can read its change).
	starts := make([]atomic.Int64, changes)
	var answers []time.Duration
	posted := make(chan error, 1)
	go func() {
		next := time.Now()
		for i := range changes {
			time.Sleep(time.Until(next))
			next = next.Add(gap)
			op := "disable"
			if i%2 == 1 {
				op = "enable"
			}
			t0 := time.Now()
			starts[i].Store(t0.UnixNano())
			code, err := d.do("POST", "/api/v1/servers/ev1/"+op, nil, nil)
			if err == nil && code != 200 {
				err = fmt.Errorf("%s: %d", op, code)
			}
			if err != nil {
				posted <- err
				return
			}
			if op == "disable" {
				answers = append(answers, time.Since(t0))
			}
		}
		posted <- nil
	}()
	seen := make([]int, subs) // changes each subscriber has read
	var lat []time.Duration
	var postErr error
	postsDone, extra := false, 0
	timeout := time.After(time.Duration(changes)*gap + 20*time.Second)
	for got := 0; got < changes*subs; {
		select {
		case err := <-posted:
			postErr, postsDone = err, true
			if err != nil {
				return fail(err)
			}
			posted = nil
		case a := <-arrivals:
			if !strings.Contains(a.data, `"ev1"`) {
				continue
			}
			disabled, enabled := strings.Contains(a.data, `"reason":"disabled"`), strings.Contains(a.data, `"reason":"enabled"`)
			if !disabled && !enabled {
				continue
			}
			n := seen[a.sub]
			if n >= changes || starts[n].Load() == 0 || disabled != (n%2 == 0) {
				// Not the change this subscriber is due to see: a flip nobody posted (the
				// config watcher applying a file it took for the user's?) or one out of order.
				if extra++; extra <= 3 {
					fmt.Fprintf(os.Stderr, "bench: B5 churn: subscriber %d read a change it was not due (after %d of %d): %.300s\n", a.sub, n, changes, a.data)
				}
				continue
			}
			lat = append(lat, a.at.Sub(time.Unix(0, starts[n].Load())))
			seen[a.sub]++
			got++
		case <-timeout:
			missed := changes*subs - len(lat)
			return fail(fmt.Errorf("%d of %d deliveries missing after the last change (posts done: %v, %v)", missed, changes*subs, postsDone, postErr))
		}
	}
	if !postsDone {
		if err := <-posted; err != nil {
			return fail(err)
		}
	}
	p99 := percentile(lat, 0.99)
	answer := medianDur(answers)
	return []row{
		{id: "B5", figure: fmt.Sprintf("steady churn: %d enable/disable changes 200 ms apart, latency of each change to each of %d subscribers (p50 %s, 0 missed, %d changes read that were not posted)", changes, subs, ms(percentile(lat, 0.5)), extra),
			value: ms(p99) + " (p99)", p99: ms(percentile(lat, 1)) + " max", target: "p99 <= 50 ms, none unposted", pass: verdict(p99 <= 50*time.Millisecond && extra == 0), runs: 1, cmd: cmdB5},
		{id: "B5", figure: fmt.Sprintf("POST /api/v1/servers/{name}/disable answer time, during the churn above (%d disables)", len(answers)),
			value: ms(answer), p99: "max " + ms(slicesMax(answers)), target: "<= 5 ms", pass: verdict(answer <= 5*time.Millisecond), runs: len(answers), cmd: cmdB5},
	}
}
