package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"
)

// spawnFloor is the floor for B6: n fixtures (with the given extra arguments) started
// directly, no proxy, each sent initialize, initialized and tools/list at once; the time until
// every one has answered tools/list. The daemon's figures are read against it, measured in
// the same run on the same machine, because on a shared 2-core machine absolute times say
// little (this is ../shared/bench/spawn_floor.py in Go, with the fixture).
func (e *env) spawnFloor(n int, extra ...string) (time.Duration, error) {
	msgs := []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"floor","version":"1"}}}` + "\n" +
		`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n" +
		`{"jsonrpc":"2.0","id":2,"method":"tools/list"}` + "\n")
	cmds := make([]*exec.Cmd, 0, n)
	defer func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	t0 := time.Now()
	for i := range n {
		c := exec.Command(e.fixture(), append([]string{"--name", fmt.Sprintf("%sfloor%03d", e.marker, i)}, extra...)...)
		stdin, err := c.StdinPipe()
		if err != nil {
			return 0, err
		}
		stdout, err := c.StdoutPipe()
		if err != nil {
			return 0, err
		}
		if err := c.Start(); err != nil {
			return 0, err
		}
		cmds = append(cmds, c)
		if _, err := stdin.Write(msgs); err != nil {
			return 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- waitListed(stdout)
		}()
	}
	wg.Wait()
	took := time.Since(t0)
	close(errs)
	for err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return took, nil
}

// waitListed reads a server's stdout until the answer to tools/list (id 2).
func waitListed(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(`"id":2`)) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

// ratio is a over the floor, as "1.23x".
func ratio(a, floor time.Duration) string {
	if floor <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(floor))
}
