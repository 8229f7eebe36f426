// Command hostile is a misbehaving upstream MCP server for mcpproxy's end-to-end tests: each
// mode attacks the proxy in one way a broken or malicious server could.
//
//   - --mode endless-json: streamable HTTP on /mcp. Every POST (initialize first) is
//     answered 200 application/json with a JSON-RPC response whose body never ends.
//   - --mode endless-endpoint: legacy HTTP+SSE on /sse. The stream opens with an endpoint
//     event whose data line never ends.
//   - --mode list-flood: MCP over stdio. It answers initialize, ping and tools/list (one tool,
//     "before_flood"); after answering the first tools/list it sends --flood
//     notifications/tools/list_changed, then switches its list to the final one (tools
//     "after_flood_1" and "after_flood_2") and sends one more list_changed. Every tools/list
//     it receives is counted in --stats (a JSON file {"tools_list": N, "flood_done": bool},
//     replaced atomically), so a test can tell how many re-lists the flood caused.
//
// The HTTP modes print "LISTENING <url>" on stdout once bound, like test/fixture.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	mode := flag.String("mode", "", "endless-json, endless-endpoint or list-flood")
	listen := flag.String("listen", "127.0.0.1:0", "listen address of the HTTP modes")
	floodN := flag.Int("flood", 20000, "list-flood: how many list_changed notifications to send")
	stats := flag.String("stats", "", "list-flood: file that counts the tools/list requests received")
	flag.Parse()
	logger := log.New(os.Stderr, "hostile: ", log.Lmicroseconds)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var err error
	switch *mode {
	case "endless-json":
		err = serve(ctx, *listen, "/mcp", endlessJSON)
	case "endless-endpoint":
		err = serve(ctx, *listen, "/sse", endlessEndpoint)
	case "list-flood":
		err = listFlood(os.Stdin, os.Stdout, *floodN, *stats)
	default:
		err = fmt.Errorf("unknown --mode %q", *mode)
	}
	if err != nil {
		logger.Printf("error: %v", err)
		os.Exit(1)
	}
}

// serve runs one handler on path until ctx ends, after printing the URL.
func serve(ctx context.Context, addr, path string, h http.HandlerFunc) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc(path, h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("LISTENING http://%s%s\n", ln.Addr(), path)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		// The endless writers end when their connections close.
		return srv.Close()
	}
}

// endlessWrite writes chunk, repeated, until the client goes away.
func endlessWrite(w io.Writer, chunk string) {
	b := []byte(strings.Repeat(chunk, 64<<10/len(chunk)+1))
	for {
		if _, err := w.Write(b); err != nil {
			return
		}
	}
}

func endlessJSON(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
	case http.MethodDelete:
		return // ending the session: fine
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	var req struct {
		ID json.RawMessage `json:"id"`
	}
	_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req)
	if len(req.ID) == 0 {
		w.WriteHeader(http.StatusAccepted) // a notification
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Mcp-Session-Id", "hostile")
	fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","serverInfo":{"name":"hostile","version":"`, req.ID)
	endlessWrite(w, "9")
}

func endlessEndpoint(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "event: endpoint\ndata: /message?sessionId=")
	endlessWrite(w, "0123456789abcdef")
}

// stdioServer writes JSON-RPC lines to stdout, one whole line per write.
type stdioServer struct {
	mu  sync.Mutex
	out *bufio.Writer
}

func (s *stdioServer) send(v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.out.Write(append(line, '\n')); err != nil {
		return err
	}
	return s.out.Flush()
}

// floodState is what list-flood has served so far.
type floodState struct {
	mu        sync.Mutex
	lists     int
	started   bool
	final     bool
	floodDone bool
	stats     string
}

// saveLocked replaces the stats file (write and rename, so a reader never sees half of it).
func (f *floodState) saveLocked() {
	if f.stats == "" {
		return
	}
	data, _ := json.Marshal(map[string]any{"tools_list": f.lists, "flood_done": f.floodDone})
	tmp := filepath.Join(filepath.Dir(f.stats), "."+filepath.Base(f.stats)+".tmp")
	if os.WriteFile(tmp, data, 0o600) == nil {
		_ = os.Rename(tmp, f.stats)
	}
}

func tool(name string) map[string]any {
	return map[string]any{"name": name, "description": "hostile test tool " + name,
		"inputSchema": map[string]any{"type": "object"}}
}

func listFlood(in io.Reader, out io.Writer, n int, stats string) error {
	s := &stdioServer{out: bufio.NewWriterSize(out, 64<<10)}
	st := &floodState{stats: stats}
	st.mu.Lock()
	st.saveLocked()
	st.mu.Unlock()
	changed := map[string]any{"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
	flood := func() {
		for range n {
			if s.send(changed) != nil {
				return
			}
		}
		st.mu.Lock()
		st.final, st.floodDone = true, true
		st.saveLocked()
		st.mu.Unlock()
		_ = s.send(changed)
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil || len(m.ID) == 0 {
			continue // notifications (initialized, cancelled) need no answer
		}
		var result any
		switch m.Method {
		case "initialize":
			result = map[string]any{"protocolVersion": "2025-06-18",
				"capabilities": map[string]any{"tools": map[string]any{"listChanged": true}},
				"serverInfo":   map[string]any{"name": "hostile", "version": "1.0.0"}}
		case "ping":
			result = map[string]any{}
		case "tools/list":
			st.mu.Lock()
			st.lists++
			st.saveLocked()
			tools := []any{tool("before_flood")}
			if st.final {
				tools = []any{tool("after_flood_1"), tool("after_flood_2")}
			}
			start := !st.started
			st.started = true
			st.mu.Unlock()
			result = map[string]any{"tools": tools}
			if err := s.send(map[string]any{"jsonrpc": "2.0", "id": m.ID, "result": result}); err != nil {
				return nil
			}
			if start {
				go flood()
			}
			continue
		default:
			if err := s.send(map[string]any{"jsonrpc": "2.0", "id": m.ID,
				"error": map[string]any{"code": -32601, "message": "method not found: " + m.Method}}); err != nil {
				return nil
			}
			continue
		}
		if err := s.send(map[string]any{"jsonrpc": "2.0", "id": m.ID, "result": result}); err != nil {
			return nil // the proxy went away
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		return err
	}
	return nil
}
