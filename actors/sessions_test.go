package actors

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors/passthrough"
	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
	"github.com/mcpproxy/mcpproxy/config"
)

// ptHarness is a sessions actor in an actor system of its own, with a real pebble store
// and the stdio fixture as every passthrough server. gate, when set, holds each dial until
// it is closed (dialling tells entered first).
type ptHarness struct {
	sys     *actor.ActorSystem
	c       *SessionsClient
	st      *store.Store
	mu      sync.Mutex
	gen     int
	gate    chan struct{}
	entered chan struct{}
}

func startSessions(t *testing.T, tune func(*SessionsOptions)) *ptHarness {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	h := &ptHarness{sys: actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet })),
		st: st, gen: 1, entered: make(chan struct{}, 10)}
	fx := fixtureServer(t, "fx", false)
	fx.Isolation = &config.Isolation{Enabled: false}
	opts := SessionsOptions{Store: st, Logger: quiet,
		Target: func(_ context.Context, name string) (PassthroughTarget, error) {
			if name != "fx" {
				return PassthroughTarget{}, Errorf(CodeNotFound, "server %q not found", name)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			return PassthroughTarget{Config: fx, Timeout: 10 * time.Second, Gen: h.gen}, nil
		},
		Dial: func(ctx context.Context, tg passthrough.Target, hd upstream.RawHandlers) (passthrough.Upstream, error) {
			h.mu.Lock()
			gate := h.gate
			h.mu.Unlock()
			if gate != nil {
				h.entered <- struct{}{}
				<-gate
			}
			return passthrough.DialRaw(ctx, tg, hd)
		}}
	if tune != nil {
		tune(&opts)
	}
	c, err := SpawnSessions(h.sys, opts)
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	t.Cleanup(func() {
		_ = h.sys.Root.PoisonFuture(c.PID()).Wait()
		h.sys.Shutdown()
		_ = st.Close()
	})
	return h
}

const ptInit = `{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"unit","version":"1"}}`

// open starts a session on fx and returns its id.
func (h *ptHarness) open(t *testing.T) string {
	t.Helper()
	id, res, rpcErr, err := h.c.OpenPassthrough(ctxT(t), "fx", "/mcp/server/fx", json.RawMessage(ptInit), mcp.Implementation{Name: "unit"})
	if err != nil || rpcErr != nil || len(res) == 0 {
		t.Fatalf("open: %v %v %s", err, rpcErr, res)
	}
	return id
}

// call sends one tools/call through a session and returns the answers its stream got.
func (h *ptHarness) call(t *testing.T, id, tool string) ([][]byte, error) {
	t.Helper()
	out := passthrough.NewStream(false)
	msg := passthrough.Message{ID: json.RawMessage(`1`), Method: "tools/call", Params: json.RawMessage(`{"name":"` + tool + `","arguments":{}}`)}
	err := h.c.PostPassthrough(ctxT(t), id, "/mcp/server/fx", []passthrough.Message{msg}, out)
	defer h.c.EndPassthrough(id, out)
	if err != nil {
		return nil, err
	}
	var answers [][]byte
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-out.Wake():
		case <-deadline:
			t.Fatal("no answer")
		}
		msgs, done := out.Take()
		answers = append(answers, msgs...)
		if done {
			return answers, nil
		}
	}
}

// pidOf asks a session's own fixture process for its pid.
func (h *ptHarness) pidOf(t *testing.T, id string) int {
	t.Helper()
	answers, err := h.call(t, id, "pid")
	if err != nil || len(answers) != 1 {
		t.Fatalf("pid: %v %q", err, answers)
	}
	var m struct {
		Result mcp.CallToolResult `json:"result"`
	}
	_ = json.Unmarshal(answers[0], &m)
	tc, _ := mcp.AsTextContent(m.Result.Content[0])
	pid, _ := strconv.Atoi(tc.Text)
	if pid == 0 || !alive(pid) {
		t.Fatalf("session pid %q", answers[0])
	}
	return pid
}

func (h *ptHarness) revoke(gen int, err error) {
	h.mu.Lock()
	h.gen = gen
	h.mu.Unlock()
	h.sys.Root.Send(h.c.PID(), RevokePassthrough{Server: "fx", Gen: gen, Err: err})
}

// TestSessionsRevoke: a revocation closes the server's sessions at once, connection and
// all; the agent's first request after it is told why (once the process is gone), later
// ones get NOT_FOUND; a session still dialling when the revocation comes is refused with
// the reason and its process closed; a target handed out before a revocation opens
// nothing; one handed out after opens as usual.
func TestSessionsRevoke(t *testing.T) {
	h := startSessions(t, nil)
	quarantined := Errorf(CodeConflict, `server "fx" is quarantined; approve it before using it`)

	id := h.open(t)
	pid := h.pidOf(t, id)
	h.revoke(2, quarantined)
	_, err := h.call(t, id, "echo")
	var rev *RevokedError
	if !errors.As(err, &rev) || ErrorCode(err) != CodeConflict {
		t.Fatalf("first request after the revocation: %v, want the reason", err)
	}
	if alive(pid) {
		t.Fatal("the agent was told before the session's process was gone")
	}
	if _, err := h.call(t, id, "echo"); ErrorCode(err) != CodeNotFound || errors.As(err, &rev) {
		t.Fatalf("second request: %v, want NOT_FOUND", err)
	}
	if n, _ := h.c.PassthroughCount(ctxT(t)); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
	s, err := h.c.Session(ctxT(t), id)
	if err != nil || s.Status != store.SessionClosed {
		t.Fatalf("record %+v %v", s, err)
	}

	t.Run("while dialling", func(t *testing.T) {
		gate := make(chan struct{})
		h.mu.Lock()
		h.gate = gate
		h.mu.Unlock()
		done := make(chan error, 1)
		go func() {
			_, _, _, err := h.c.OpenPassthrough(ctxT(t), "fx", "/mcp/server/fx", json.RawMessage(ptInit), mcp.Implementation{})
			done <- err
		}()
		<-h.entered
		h.revoke(3, quarantined)
		h.mu.Lock()
		h.gate = nil
		h.mu.Unlock()
		close(gate)
		if err := <-done; ErrorCode(err) != CodeConflict {
			t.Fatalf("open revoked while dialling: %v", err)
		}
		if n, _ := h.c.PassthroughCount(ctxT(t)); n != 0 {
			t.Fatalf("%d sessions left", n)
		}
	})
	t.Run("stale target", func(t *testing.T) {
		// A target the registry handed out before its latest revocation (gen 3).
		h.mu.Lock()
		h.gen = 2
		h.mu.Unlock()
		if _, _, _, err := h.c.OpenPassthrough(ctxT(t), "fx", "/mcp/server/fx", json.RawMessage(ptInit), mcp.Implementation{}); ErrorCode(err) != CodeConflict {
			t.Fatalf("open with a stale target: %v", err)
		}
		h.mu.Lock()
		h.gen = 3
		h.mu.Unlock()
		id := h.open(t)
		if answers, err := h.call(t, id, "echo"); err != nil || len(answers) != 1 {
			t.Fatalf("a session opened after the revocation: %v %q", err, answers)
		}
	})
}

// TestSessionsPassthroughBound: past PassthroughSessions the least recently active idle
// session is closed, its process gone before the new session opens; a DELETE answers once
// the session's process is gone; an open whose caller gives up while dialling leaves
// nothing behind.
func TestSessionsPassthroughBound(t *testing.T) {
	h := startSessions(t, func(o *SessionsOptions) { o.PassthroughSessions = 2 })
	a, b := h.open(t), h.open(t)
	pa, pb := h.pidOf(t, a), h.pidOf(t, b)
	h.pidOf(t, b) // b is now the more recently active
	c := h.open(t)
	if alive(pa) || !alive(pb) {
		t.Fatalf("after the third open: first alive %v, second alive %v; want the first evicted", alive(pa), alive(pb))
	}
	if _, err := h.call(t, a, "echo"); ErrorCode(err) != CodeNotFound {
		t.Fatalf("the evicted session: %v", err)
	}
	pc := h.pidOf(t, c)
	if err := h.c.DeletePassthrough(ctxT(t), c, "/mcp/server/fx"); err != nil {
		t.Fatal(err)
	}
	if alive(pc) {
		t.Fatal("DELETE answered before the session's process was gone")
	}
	if err := h.c.DeletePassthrough(ctxT(t), c, "/mcp/server/fx"); ErrorCode(err) != CodeNotFound {
		t.Fatalf("second DELETE: %v", err)
	}

	t.Run("caller gives up", func(t *testing.T) {
		gate := make(chan struct{})
		h.mu.Lock()
		h.gate = gate
		h.mu.Unlock()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, _, _, err := h.c.OpenPassthrough(ctx, "fx", "/mcp/server/fx", json.RawMessage(ptInit), mcp.Implementation{})
			done <- err
		}()
		<-h.entered
		cancel()
		if err := <-done; ErrorCode(err) != CodeTimeout {
			t.Fatalf("abandoned open: %v", err)
		}
		h.mu.Lock()
		h.gate = nil
		h.mu.Unlock()
		close(gate)
		waitFor(t, "the abandoned session to be gone", func() bool {
			n, _ := h.c.PassthroughCount(ctxT(t))
			return n == 1 // b
		})
	})
}

// TestSessionsShutdown: stopping the sessions actor closes every passthrough session's
// process before it is gone, and records every session as closed.
func TestSessionsShutdown(t *testing.T) {
	h := startSessions(t, nil)
	a, b := h.open(t), h.open(t)
	pa, pb := h.pidOf(t, a), h.pidOf(t, b)
	mcpID := h.c.NewSession("/mcp")
	if err := h.sys.Root.PoisonFuture(h.c.PID()).Wait(); err != nil {
		t.Fatal(err)
	}
	if alive(pa) || alive(pb) {
		t.Fatalf("processes alive after the sessions actor stopped: %v %v", alive(pa), alive(pb))
	}
	for _, id := range []string{a, b, mcpID} {
		if s, err := h.st.GetSession(id); err != nil || s.Status != store.SessionClosed {
			t.Errorf("stored %s: %+v %v", id, s, err)
		}
	}
}

// waitFor polls cond until it holds, at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkSessionsRequest is what the sessions actor adds to every /mcp request: Begin (an
// ask), CountCall and End (sends), from parallel clients of one session:
//
//	go test -run '^$' -bench SessionsRequest -count 5 ./actors/
func BenchmarkSessionsRequest(b *testing.B) {
	quiet := slog.New(slog.DiscardHandler)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	c, err := SpawnSessions(sys, SessionsOptions{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = sys.Root.PoisonFuture(c.PID()).Wait()
		sys.Shutdown()
	})
	id := c.NewSession("/mcp")
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Begin(ctx, id, "/mcp"); err != nil {
				b.Fatal(err)
			}
			c.CountCall(id)
			c.End(id)
		}
	})
}
