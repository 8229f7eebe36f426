package upstream

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"go.uber.org/goleak"

	"github.com/mcpproxy/mcpproxy/config"
)

// helperEnv makes the test binary act as a line-delimited JSON-RPC server (rawHelper).
const helperEnv = "MCPPROXY_RAW_HELPER"

// TestRawHelperProcess is not a test: it is the stdio server the other tests start.
func TestRawHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process")
	}
	rawHelper()
	os.Exit(0)
}

// rawHelper answers, by method:
//
//	echo      result {"params": <params as received>}
//	notify    a notifications/message carrying the params, then result {}
//	ask       a sampling/createMessage request to the client, then result {"answer": <the client's answer>}
//	error     error -32602 "bad" with data {"x":[1,2]}
//	hang      no answer
//	exit      the process exits
//	flood     a line longer than any sane limit
//
// It prints a line that is not JSON first, as servers that log to stdout do.
func rawHelper() {
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false) // so that what the client sent comes back byte for byte
	send := func(v any) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(v)
		out.Flush()
	}
	fmt.Fprintln(out, "helper starting")
	out.Flush()
	answers := map[string]chan json.RawMessage{}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if json.Unmarshal(in.Bytes(), &m) != nil {
			continue
		}
		if m.Method == "" { // the client's answer to "ask"
			mu.Lock()
			ch := answers[string(m.ID)]
			mu.Unlock()
			if ch != nil {
				if len(m.Error) > 0 {
					ch <- m.Error
				} else {
					ch <- m.Result
				}
			}
			continue
		}
		if len(m.ID) == 0 {
			continue // notifications are ignored
		}
		reply := func(result any) {
			send(map[string]any{"jsonrpc": "2.0", "id": m.ID, "result": result})
		}
		switch m.Method {
		case "echo":
			reply(map[string]any{"params": m.Params})
		case "notify":
			send(map[string]any{"jsonrpc": "2.0", "method": "notifications/message", "params": m.Params})
			reply(map[string]any{})
		case "ask":
			ch := make(chan json.RawMessage, 1)
			id := `"ask-` + string(m.ID) + `"`
			mu.Lock()
			answers[id] = ch
			mu.Unlock()
			send(map[string]any{"jsonrpc": "2.0", "id": json.RawMessage(id), "method": "sampling/createMessage", "params": m.Params})
			go func(id json.RawMessage) {
				send(map[string]any{"jsonrpc": "2.0", "id": id, "result": map[string]any{"answer": <-ch}})
			}(m.ID)
		case "error":
			send(map[string]any{"jsonrpc": "2.0", "id": m.ID, "error": map[string]any{"code": -32602, "message": "bad", "data": map[string]any{"x": []int{1, 2}}}})
		case "hang":
		case "exit":
			os.Exit(3)
		case "flood":
			mu.Lock()
			out.WriteString(`{"jsonrpc":"2.0","method":"x","params":{"s":"` + strings.Repeat("a", 4096) + `"}}` + "\n")
			out.Flush()
			mu.Unlock()
		}
	}
}

func helperConfig() config.ServerConfig {
	return config.ServerConfig{Name: "helper", Protocol: "stdio", Command: os.Args[0],
		Args: []string{"-test.run=^TestRawHelperProcess$"}, Env: map[string]string{helperEnv: "1"}}
}

func noLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// recorder collects what the upstream sends on its own.
type recorder struct {
	mu    sync.Mutex
	notes []string // "method params"
}

func (r *recorder) note(method string, params json.RawMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, method+" "+string(params))
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.notes...)
}

func dialHelper(t *testing.T, opts Options, h RawHandlers) *RawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := DialRaw(ctx, helperConfig(), opts, h)
	if err != nil {
		t.Fatalf("DialRaw: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRawConnStdio: params and results pass byte for byte (unknown fields, HTML characters),
// errors keep their data, notifications arrive before the response that followed them,
// server-to-client requests are answered by the handler, and cancellation frees the call.
func TestRawConnStdio(t *testing.T) {
	noLeaks(t)
	rec := &recorder{}
	var asked []string
	var askMu sync.Mutex
	c := dialHelper(t, Options{}, RawHandlers{
		Notification: rec.note,
		Request: func(_ context.Context, id json.RawMessage, method string, params json.RawMessage) (json.RawMessage, *RPCError) {
			askMu.Lock()
			asked = append(asked, string(id)+" "+method+" "+string(params))
			askMu.Unlock()
			return json.RawMessage(`{"role":"assistant","content":{"type":"text","text":"hi"},"x-extra":[1]}`), nil
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("raw round trip", func(t *testing.T) {
		params := json.RawMessage(`{"a":"<b>&amp;</b>","unknownField":{"nested":[1,2.5,null]},"_meta":{"k":"v"}}`)
		res, rpcErr, err := c.Call(ctx, c.NewID(), "echo", params)
		if err != nil || rpcErr != nil {
			t.Fatalf("echo: %v %v", err, rpcErr)
		}
		if want := `{"params":` + string(params) + `}`; string(res) != want {
			t.Fatalf("echo = %s, want %s", res, want)
		}
	})
	t.Run("error data verbatim", func(t *testing.T) {
		_, rpcErr, err := c.Call(ctx, c.NewID(), "error", nil)
		if err != nil || rpcErr == nil || rpcErr.Code != -32602 || rpcErr.Message != "bad" || string(rpcErr.Data) != `{"x":[1,2]}` {
			t.Fatalf("error: %v %+v", err, rpcErr)
		}
	})
	t.Run("notification before response", func(t *testing.T) {
		if _, _, err := c.Call(ctx, c.NewID(), "notify", json.RawMessage(`{"level":"info","data":"first"}`)); err != nil {
			t.Fatal(err)
		}
		got := rec.all()
		if len(got) != 1 || got[0] != `notifications/message {"level":"info","data":"first"}` {
			t.Fatalf("notifications when the response came: %q", got)
		}
	})
	t.Run("server request", func(t *testing.T) {
		res, rpcErr, err := c.Call(ctx, c.NewID(), "ask", json.RawMessage(`{"messages":[],"maxTokens":5}`))
		if err != nil || rpcErr != nil {
			t.Fatalf("ask: %v %v", err, rpcErr)
		}
		if want := `{"answer":{"role":"assistant","content":{"type":"text","text":"hi"},"x-extra":[1]}}`; string(res) != want {
			t.Fatalf("ask = %s, want %s", res, want)
		}
		askMu.Lock()
		defer askMu.Unlock()
		if len(asked) != 1 || !strings.HasPrefix(asked[0], `"ask-`) || !strings.HasSuffix(asked[0], ` sampling/createMessage {"messages":[],"maxTokens":5}`) {
			t.Fatalf("the handler saw %q", asked)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		cctx, ccancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer ccancel()
		if _, _, err := c.Call(cctx, c.NewID(), "hang", nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("hang: %v, want the deadline", err)
		}
		s := c.t.(*rawStdio)
		s.mu.Lock()
		n := len(s.pending)
		s.mu.Unlock()
		if n != 0 {
			t.Fatalf("%d calls still pending after cancellation", n)
		}
		if err := c.Notify(ctx, "notifications/cancelled", json.RawMessage(`{"requestId":1}`)); err != nil {
			t.Fatalf("notify: %v", err)
		}
	})
}

// TestRawConnLoss: a child that exits fails the call in flight with ErrConnLost at once,
// and Close leaves no process behind.
func TestRawConnLoss(t *testing.T) {
	noLeaks(t)
	c := dialHelper(t, Options{}, RawHandlers{})
	pid := c.PID()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hung := make(chan error, 1)
	go func() {
		_, _, err := c.Call(ctx, c.NewID(), "hang", nil)
		hung <- err
	}()
	if _, _, err := c.Call(ctx, c.NewID(), "exit", nil); !errors.Is(err, ErrConnLost) {
		t.Fatalf("exit: %v, want ErrConnLost", err)
	}
	select {
	case err := <-hung:
		if !errors.Is(err, ErrConnLost) {
			t.Fatalf("call in flight: %v, want ErrConnLost", err)
		}
	case <-ctx.Done():
		t.Fatal("the call in flight did not fail when the child exited")
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed")
	}
	if err := c.Notify(ctx, "x", nil); !errors.Is(err, ErrConnLost) {
		t.Fatalf("notify after loss: %v", err)
	}
	c.Close()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("process %d still exists after Close", pid)
	}
}

// TestRawConnLineLimit: a line over MaxMessageBytes drops the connection.
func TestRawConnLineLimit(t *testing.T) {
	noLeaks(t)
	c := dialHelper(t, Options{MaxMessageBytes: 1024}, RawHandlers{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := c.Call(ctx, c.NewID(), "flood", nil); !errors.Is(err, ErrConnLost) {
		t.Fatalf("flood: %v, want ErrConnLost", err)
	}
	if !errors.Is(c.Err(), ErrMessageTooLarge) || !strings.Contains(c.Err().Error(), "max_message_bytes (1024)") {
		t.Fatalf("Err = %v, want ErrMessageTooLarge naming the limit", c.Err())
	}
}

// TestRawConnHTTP: over streamable HTTP (mcp-go's server), the agent's initialize with its
// capabilities goes through, a log notification and a sampling request reach the handlers,
// and the tool's result comes back.
func TestRawConnHTTP(t *testing.T) {
	noLeaks(t)
	quiet := slog.New(slog.DiscardHandler)
	srv := server.NewMCPServer("http-up", "1.0.0", server.WithLogging(), server.WithLogger(quiet))
	srv.EnableSampling()
	srv.AddTool(mcp.NewTool("ask"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		_ = server.ServerFromContext(ctx).SendLogMessageToClient(ctx, mcp.NewLoggingMessageNotification(mcp.LoggingLevelError, "tool", "asking"))
		req := mcp.CreateMessageRequest{}
		req.CreateMessageParams.Messages = []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: mcp.NewTextContent("q")}}
		req.CreateMessageParams.MaxTokens = 5
		res, err := server.ServerFromContext(ctx).RequestSampling(ctx, req)
		if err != nil {
			return nil, err
		}
		return mcp.NewToolResultText(res.Model), nil
	})
	hs := httptest.NewServer(server.NewStreamableHTTPServer(srv, server.WithStreamableHTTPLogger(quiet)))
	defer hs.Close()

	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := DialRaw(ctx, config.ServerConfig{Name: "h", Protocol: "http", URL: hs.URL}, Options{}, RawHandlers{
		Notification: rec.note,
		Request: func(_ context.Context, _ json.RawMessage, method string, _ json.RawMessage) (json.RawMessage, *RPCError) {
			if method != "sampling/createMessage" {
				return nil, &RPCError{Code: -32601, Message: method}
			}
			return json.RawMessage(`{"role":"assistant","content":{"type":"text","text":"a"},"model":"test-model"}`), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, rpcErr, err := c.Call(ctx, c.NewID(), "initialize", json.RawMessage(
		`{"protocolVersion":"2025-06-18","capabilities":{"sampling":{}},"clientInfo":{"name":"agent","version":"1"}}`))
	if err != nil || rpcErr != nil {
		t.Fatalf("initialize: %v %v", err, rpcErr)
	}
	var ir mcp.InitializeResult
	if err := json.Unmarshal(res, &ir); err != nil || ir.ProtocolVersion != "2025-06-18" {
		t.Fatalf("initialize result %s: %v", res, err)
	}
	c.SetProtocolVersion(ir.ProtocolVersion)
	if err := c.Notify(ctx, "notifications/initialized", nil); err != nil {
		t.Fatal(err)
	}
	if _, rpcErr, err := c.Call(ctx, c.NewID(), "logging/setLevel", json.RawMessage(`{"level":"debug"}`)); err != nil || rpcErr != nil {
		t.Fatalf("setLevel: %v %v", err, rpcErr)
	}
	res, rpcErr, err = c.Call(ctx, c.NewID(), "tools/call", json.RawMessage(`{"name":"ask","arguments":{}}`))
	if err != nil || rpcErr != nil {
		t.Fatalf("tools/call: %v %v", err, rpcErr)
	}
	if !strings.Contains(string(res), `"text":"test-model"`) {
		t.Fatalf("tools/call = %s", res)
	}
	got := rec.all()
	if len(got) == 0 || !strings.HasPrefix(got[0], "notifications/message ") || !strings.Contains(got[0], `"data":"asking"`) {
		t.Fatalf("notifications = %q", got)
	}
}

// TestOneGuardRunsEveryServer: two stdio servers run under the same guard process, a child
// of this process, which exits once both are closed (an idle daemon runs no guard).
func TestOneGuardRunsEveryServer(t *testing.T) {
	noLeaks(t)
	a := dialHelper(t, Options{}, RawHandlers{})
	b := dialHelper(t, Options{}, RawHandlers{})
	parent := func(pid int) int {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		n, err := strconv.Atoi(strings.Fields(s[strings.LastIndexByte(s, ')')+2:])[1])
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	guard := parent(a.PID())
	if guard == os.Getpid() || parent(b.PID()) != guard || parent(guard) != os.Getpid() {
		t.Fatalf("servers %d and %d have parents %d and %d; want one guard, a child of %d",
			a.PID(), b.PID(), guard, parent(b.PID()), os.Getpid())
	}
	a.Close()
	if err := syscall.Kill(guard, 0); err != nil {
		t.Fatalf("the guard %d ended while it still ran a server: %v", guard, err)
	}
	b.Close()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(guard, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the guard %d still runs after its last server closed", guard)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
