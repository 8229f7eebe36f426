package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The lean MCP clients below speak just enough JSON-RPC (initialize, initialized,
// tools/call) to time tool calls. On a 2-core machine a full SDK client costs the load
// generator as much CPU as the proxy spends, which would hide the figure being measured;
// these cost a few microseconds per call. Both sides of every comparison use them.

// protocolVersion is the newest revision with the initialize handshake, what agents use.
const protocolVersion = "2025-11-25"

// rpcAnswer is the part of a JSON-RPC answer the bench checks.
type rpcAnswer struct {
	ID     json.RawMessage `json:"id"`
	Result *struct {
		IsError bool `json:"isError"`
	} `json:"result"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func (a rpcAnswer) err() error {
	switch {
	case a.Error != nil:
		return fmt.Errorf("json-rpc error: %s", a.Error.Message)
	case a.Result == nil:
		return errors.New("answer without result")
	case a.Result.IsError:
		return errors.New("tool result has isError")
	}
	return nil
}

// leanHTTP is one MCP session over streamable HTTP on one keep-alive connection.
type leanHTTP struct {
	c       *rawClient
	path    string
	headers string
	id      int
}

func dialLeanHTTP(rawURL, key string) (*leanHTTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	c, err := dialRaw(u.Host)
	if err != nil {
		return nil, err
	}
	l := &leanHTTP{c: c, path: u.Path, headers: "Accept: application/json, text/event-stream\r\n"}
	if key != "" {
		l.headers += "X-API-Key: " + key + "\r\n"
	}
	init := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"` + protocolVersion +
		`","capabilities":{},"clientInfo":{"name":"mcpproxy-bench","version":"1"}}}`
	status, hdr, body, err := c.post(l.path, l.headers, []byte(init))
	if err == nil && status != 200 {
		err = fmt.Errorf("initialize: %d %s", status, body)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	if sid := hdr["mcp-session-id"]; sid != "" {
		l.headers += "Mcp-Session-Id: " + sid + "\r\n"
	}
	l.headers += "MCP-Protocol-Version: " + protocolVersion + "\r\n"
	status, _, body, err = c.post(l.path, l.headers, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	if err == nil && status != 202 && status != 200 {
		err = fmt.Errorf("initialized: %d %s", status, body)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return l, nil
}

func (l *leanHTTP) Close() error { return l.c.Close() }

// call makes one tools/call and checks the answer.
func (l *leanHTTP) call(name string, args string) error {
	l.id++
	body := `{"jsonrpc":"2.0","id":` + strconv.Itoa(l.id) + `,"method":"tools/call","params":{"name":"` + name + `","arguments":` + args + `}}`
	status, hdr, resp, err := l.c.post(l.path, l.headers, []byte(body))
	if err != nil {
		return err
	}
	if status != 200 {
		return fmt.Errorf("tools/call: %d %s", status, resp)
	}
	if ct := hdr["content-type"]; len(ct) >= 17 && ct[:17] == "text/event-stream" {
		// The answer is the data of the last event.
		i := bytes.LastIndex(resp, []byte("data:"))
		if i < 0 {
			return fmt.Errorf("event stream without data: %q", resp)
		}
		resp = resp[i+5:]
		if j := bytes.IndexByte(resp, '\n'); j >= 0 {
			resp = resp[:j]
		}
	}
	var a rpcAnswer
	if err := json.Unmarshal(resp, &a); err != nil {
		return fmt.Errorf("decode answer %q: %w", resp, err)
	}
	return a.err()
}

// leanStdio is one MCP session with a fixture process over stdio; calls from many
// goroutines share it, matched to their answers by id.
type leanStdio struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	wmu  sync.Mutex
	id   atomic.Int64
	mu   sync.Mutex
	wait map[string]chan rpcAnswer
	dead chan struct{}
}

func startLeanStdio(bin string, args ...string) (*leanStdio, error) {
	cmd := exec.Command(bin, args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &leanStdio{cmd: cmd, in: in, wait: map[string]chan rpcAnswer{}, dead: make(chan struct{})}
	go s.read(out)
	init := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"` + protocolVersion +
		`","capabilities":{},"clientInfo":{"name":"mcpproxy-bench","version":"1"}}}`
	ch := s.expect("0")
	if err := s.send(init); err != nil {
		s.Close()
		return nil, err
	}
	select {
	case a := <-ch:
		if a.Error != nil {
			s.Close()
			return nil, fmt.Errorf("initialize: %s", a.Error.Message)
		}
	case <-time.After(20 * time.Second):
		s.Close()
		return nil, errors.New("initialize: no answer")
	}
	if err := s.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *leanStdio) read(out io.Reader) {
	defer close(s.dead)
	r := bufio.NewReaderSize(out, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var a rpcAnswer
		if json.Unmarshal(line, &a) != nil || len(a.ID) == 0 {
			continue // a notification or noise
		}
		s.mu.Lock()
		ch := s.wait[string(a.ID)]
		delete(s.wait, string(a.ID))
		s.mu.Unlock()
		if ch != nil {
			ch <- a
		}
	}
}

func (s *leanStdio) expect(id string) chan rpcAnswer {
	ch := make(chan rpcAnswer, 1)
	s.mu.Lock()
	s.wait[id] = ch
	s.mu.Unlock()
	return ch
}

func (s *leanStdio) send(line string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := io.WriteString(s.in, line+"\n")
	return err
}

// call makes one tools/call and checks the answer.
func (s *leanStdio) call(name, args string) error {
	id := strconv.FormatInt(s.id.Add(1), 10)
	ch := s.expect(id)
	if err := s.send(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"` + name + `","arguments":` + args + `}}`); err != nil {
		return err
	}
	select {
	case a := <-ch:
		return a.err()
	case <-s.dead:
		return errors.New("fixture exited")
	case <-time.After(30 * time.Second):
		return errors.New("no answer in 30 s")
	}
}

func (s *leanStdio) Close() error {
	s.in.Close()
	select {
	case <-s.dead:
	case <-time.After(2 * time.Second):
		_ = s.cmd.Process.Kill()
	}
	return s.cmd.Wait()
}
