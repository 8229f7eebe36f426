package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// env is what every benchmark shares: the binaries, the temporary directory, the options
// and the marker that makes this run's fixture processes findable in /proc.
type env struct {
	root   string
	tmp    string
	opts   options
	marker string
	seq    int

	mu    sync.Mutex
	procs []*exec.Cmd // fixtures started directly, killed by reap
}

func (e *env) fixture() string { return filepath.Join(e.tmp, "fixture") }

// dataDir returns a new empty directory under the temporary directory.
func (e *env) dataDir(name string) string {
	e.seq++
	dir := filepath.Join(e.tmp, fmt.Sprintf("%s-%d", name, e.seq))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		panic(err)
	}
	return dir
}

// stdioServer is a config entry for a fixture over stdio whose command line carries the
// run's marker, not quarantined.
func (e *env) stdioServer(name string, extra ...string) map[string]any {
	args := append([]string{"--name", e.marker + name}, extra...)
	return map[string]any{"name": name, "command": e.fixture(), "args": args, "quarantined": false}
}

// benchKey is the API key of every bench daemon (it is written into the config, so the
// daemon prints nothing and the bench need not read it back).
const benchKey = "bench-0123456789abcdef0123456789abcdef"

// daemon is a running mcpproxy process.
type daemon struct {
	cmd    *exec.Cmd
	url    string
	addr   string
	dir    string
	log    *lockedBuffer
	client *http.Client
	exited chan struct{}
}

// startDaemon writes a config with the given servers into dir (unless servers is nil,
// which keeps the file there) and starts the daemon on a free port. It returns once the
// process is started; call waitReady to wait for /readyz.
func (e *env) startDaemon(dir string, servers []map[string]any, extra map[string]any) (*daemon, error) {
	return e.startDaemonEnv(dir, servers, extra, nil)
}

// startDaemonEnv is startDaemon with extra environment entries for the daemon.
func (e *env) startDaemonEnv(dir string, servers []map[string]any, extra map[string]any, environ []string) (*daemon, error) {
	if servers != nil {
		cfg := map[string]any{"api_key": benchKey, "mcpServers": servers}
		for k, v := range extra {
			cfg[k] = v
		}
		data, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "mcp_config.json"), data, 0o600); err != nil {
			return nil, err
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(e.tmp, "mcpproxy"), "serve", "--data-dir", dir, "--listen", addr, "--log-level", "warn")
	cmd.Env = append(append(os.Environ(), e.opts.daemonEnv...), environ...)
	d := &daemon{cmd: cmd, url: "http://" + addr, addr: addr, dir: dir, log: &lockedBuffer{}, exited: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait(); close(d.exited) }()
	return d, nil
}

// freeAddr picks a free loopback port. Another process could take it before the daemon
// binds it; on this machine nothing else races for ports in the same instant.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady polls /readyz every millisecond until it answers 200 and returns when that
// happened. Connection refusals are immediate, so the poll costs little.
func (d *daemon) waitReady(timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	defer c.CloseIdleConnections()
	for time.Now().Before(deadline) {
		select {
		case <-d.exited:
			return time.Time{}, fmt.Errorf("daemon exited: %s", d.log.String())
		default:
		}
		resp, err := c.Get(d.url + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return time.Time{}, errors.New("daemon not ready in time")
}

// stop sends SIGTERM and waits (bounded), then SIGKILL.
func (d *daemon) stop() {
	d.client.CloseIdleConnections()
	select {
	case <-d.exited:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// do sends a request with the key and decodes a JSON answer into out (when non-nil).
func (d *daemon) do(method, path string, body any, out any) (int, error) {
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, d.url+path, r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-API-Key", benchKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %w", path, err)
		}
	}
	return resp.StatusCode, nil
}

// serverState is the part of the API's Server object the benchmarks read.
type serverState struct {
	Name        string     `json:"name"`
	State       string     `json:"state"`
	ToolsCount  int        `json:"tools_count"`
	ConnectedAt *time.Time `json:"connected_at"`
	LastError   string     `json:"last_error"`
}

func (d *daemon) servers() ([]serverState, error) {
	var out struct {
		Servers []serverState `json:"servers"`
	}
	code, err := d.do("GET", "/api/v1/servers", nil, &out)
	if err == nil && code != 200 {
		err = fmt.Errorf("GET /api/v1/servers: %d", code)
	}
	return out.Servers, err
}

// waitAllReady polls the server list every 10 ms until n servers are ready (and, when
// after is not zero, connected after it). It returns when that was first seen.
func (d *daemon) waitAllReady(n int, after time.Time, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	var last []serverState
	for time.Now().Before(deadline) {
		list, err := d.servers()
		if err == nil {
			last = list
			ready := 0
			for _, s := range list {
				if s.State == "ready" && (after.IsZero() || s.ConnectedAt != nil && s.ConnectedAt.After(after)) {
					ready++
				}
			}
			if ready >= n {
				return time.Now(), nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	states := map[string]int{}
	for _, s := range last {
		states[s.State]++
	}
	return time.Time{}, fmt.Errorf("%d servers not ready within %s: states %v", n, timeout, states)
}

// memKB is a process's resident memory from /proc/PID/status, in KiB: VmRSS and its two
// parts, anonymous memory (heap, stacks) and mapped file pages (mostly the binary's text
// and read-only data, shared with the page cache).
type memKB struct{ rss, anon, file int64 }

// readMem reads the memory of pid alone (children excluded).
func readMem(pid int) memKB {
	var m memKB
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m
	}
	_ = eachField(bytes.NewReader(data), ":", func(k, v string) {
		var kb int64
		fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
		switch k {
		case "VmRSS":
			m.rss = kb
		case "RssAnon":
			m.anon = kb
		case "RssFile":
			m.file = kb
		}
	})
	return m
}

// rssKB is VmRSS of pid in KiB.
func rssKB(pid int) int64 { return readMem(pid).rss }

// split describes the parts of a memory reading.
func (m memKB) split() string {
	return fmt.Sprintf("anon %s + file %s", mb(m.anon), mb(m.file))
}

// processesWithArg lists live pids whose command line contains needle.
func processesWithArg(needle string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, ent := range entries {
		var pid int
		if _, err := fmt.Sscanf(ent.Name(), "%d", &pid); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(needle)) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue // a zombie is dead already
		}
		pids = append(pids, pid)
	}
	return pids
}

// startFixtureHTTP starts the fixture over streamable HTTP and returns its /mcp URL.
func (e *env) startFixtureHTTP(extra ...string) (string, error) {
	args := append([]string{"--transport", "http", "--listen", "127.0.0.1:0", "--name", e.marker + "http"}, extra...)
	cmd := exec.Command(e.fixture(), args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return "", err
	}
	e.mu.Lock()
	e.procs = append(e.procs, cmd)
	e.mu.Unlock()
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				urls <- u
			}
		}
	}()
	select {
	case u := <-urls:
		return u, nil
	case <-time.After(20 * time.Second):
		return "", errors.New("fixture did not print its URL")
	}
}

// reap kills the fixtures this process started and any process left with the marker.
func (e *env) reap() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.procs {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
	e.procs = nil
	for _, pid := range processesWithArg(e.marker) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// lockedBuffer collects a daemon's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 {
		return len(p), nil // keep the beginning; a bench daemon at warn level says little
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ctxTimeout is context.WithTimeout from the background context.
func ctxTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// goMem is what the daemon's Go runtime says of its memory, from GET /metrics (the
// Prometheus Go collector): bytes of heap spans in use and of goroutine stacks, and the
// goroutine count. A GC runs only when the runtime decides, so heap is live data plus
// garbage not yet collected; RSS (readMem) follows the heap's peak.
type goMem struct{ heap, stack, goroutines float64 }

func (d *daemon) goMem() (goMem, error) {
	req, err := http.NewRequest("GET", d.url+"/metrics", nil)
	if err != nil {
		return goMem{}, err
	}
	req.Header.Set("X-API-Key", benchKey)
	resp, err := d.client.Do(req)
	if err != nil {
		return goMem{}, err
	}
	defer resp.Body.Close()
	var m goMem
	err = eachField(resp.Body, " ", func(name, v string) {
		var f float64
		fmt.Sscanf(v, "%g", &f)
		switch name {
		case "go_memstats_heap_inuse_bytes":
			m.heap = f
		case "go_memstats_stack_inuse_bytes":
			m.stack = f
		case "go_goroutines":
			m.goroutines = f
		}
	})
	return m, err
}

// eachField calls f with the two sides of every line of r that has sep in it.
func eachField(r io.Reader, sep string, f func(k, v string)) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), sep); ok {
			f(k, v)
		}
	}
	return sc.Err()
}
