package actors

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/actors/store"
)

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "github", true},
		{"github", "github", true},
		{"github", "github2", false},
		{"git*", "github", true},
		{"*hub", "github", true},
		{"g?thub", "github", true},
		{"g?thub", "gthub", false},
		{"github:get_*", "github:get_issue", true},
		{"github:get_*", "github:create_issue", false},
		{"*:get_*", "linear:get_team", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"fs:*", "fs:dir/read", true}, // '/' is not special
		{"**", "x", true},
	} {
		if got := globMatch(c.pattern, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestTokenScope(t *testing.T) {
	s := scopeOf(store.Token{Servers: []string{"github", "lin*"}, Tools: []string{"github:get_*", "linear:*"}})
	for _, c := range []struct {
		server, tool string
		ro, want     bool
	}{
		{"github", "get_issue", false, true},
		{"github", "create_issue", false, false},
		{"linear", "create_issue", false, true},
		{"lint", "x", false, false}, // the server is allowed, no tool glob names it
		{"slack", "get_x", true, false},
	} {
		if got := s.AllowsTool(c.server, c.tool, c.ro); got != c.want {
			t.Errorf("AllowsTool(%s, %s, %v) = %v, want %v", c.server, c.tool, c.ro, got, c.want)
		}
	}
	if !s.AllowsServer("lint") || s.AllowsServer("slack") {
		t.Error("AllowsServer does not follow the server globs")
	}
	ro := scopeOf(store.Token{Servers: []string{"*"}, ReadOnly: true})
	if ro.AllowsTool("x", "write", false) || !ro.AllowsTool("x", "read", true) {
		t.Error("a read-only scope does not follow readOnlyHint")
	}
	if err := scopeRefusal(ro, "x", "write", false); ErrorCode(err) != CodeForbidden || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("refusal of a read-only scope: %v", err)
	}
}

// countingStore is the real pebble store, counting the writes of token records.
type countingStore struct {
	*store.Store
	mu     sync.Mutex
	writes int
}

func (c *countingStore) PutTokens(tokens ...store.Token) error {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Store.PutTokens(tokens...)
}

func (c *countingStore) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// TestTokensActor: a token verifies until revoked; a thousand uses cost one write of its
// last use (on the flush timer); expiry ends it without a request; the table is reloaded
// from the store.
func TestTokensActor(t *testing.T) {
	pst, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pst.Close()
	st := &countingStore{Store: pst}
	quiet := slog.New(slog.DiscardHandler)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	defer sys.Shutdown()
	c, err := SpawnTokens(sys, TokensOptions{Store: st, Logger: quiet, FlushEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok, err := c.Create(ctx, TokenSpec{Name: "a", Servers: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, TokenSpec{Name: "a", Servers: []string{"*"}}); ErrorCode(err) != CodeConflict {
		t.Errorf("duplicate name: %v, want CONFLICT", err)
	}
	var ae *Error
	if _, err := c.Create(ctx, TokenSpec{Name: "b"}); !errors.As(err, &ae) || ae.Code != CodeInvalidArgument || len(ae.Fields) != 1 || ae.Fields[0].Field != "servers" {
		t.Errorf("no servers: %v, want INVALID_ARGUMENT naming servers", err)
	}
	base := st.count()
	for range 1000 {
		if caller, ok := c.Verify(ctx, tok.Token, true); !ok || caller.Credential != "a" || caller.Scope == nil {
			t.Fatalf("verify: %+v %v", caller, ok)
		}
	}
	if _, ok := c.Verify(ctx, tok.Token+"x", true); ok {
		t.Error("a wrong token verified")
	}
	deadline := time.Now().Add(5 * time.Second)
	for st.count() == base && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling with a bound for the flush timer
	}
	if n := st.count() - base; n != 1 {
		t.Errorf("1000 uses wrote the token %d times, want once", n)
	}

	at := time.Now().Add(300 * time.Millisecond)
	soon, err := c.Create(ctx, TokenSpec{Name: "soon", Servers: []string{"x"}, ExpiresAt: &at})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Verify(ctx, soon.Token, false); !ok {
		t.Error("a token before its expiry did not verify")
	}
	deadline = time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := c.Verify(ctx, soon.Token, false); !ok {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, ok := c.Verify(ctx, soon.Token, false); ok {
		t.Error("an expired token still verifies")
	}

	if err := c.Revoke(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Verify(ctx, tok.Token, false); ok {
		t.Error("a revoked token still verifies")
	}
	if err := c.Revoke(ctx, "a"); ErrorCode(err) != CodeNotFound {
		t.Errorf("revoking twice: %v, want NOT_FOUND", err)
	}

	// A new actor on the same store knows the expired token, and only it.
	sys.Root.Stop(c.PID())
	sys2 := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	defer sys2.Shutdown()
	c2, err := SpawnTokens(sys2, TokensOptions{Store: st, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	list, err := c2.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "soon" || !list[0].Expired {
		t.Errorf("reloaded tokens: %+v %v", list, err)
	}
}

// BenchmarkTokensVerify is the cost of checking an agent token on an MCP request: one ask
// of the tokens actor, which compares the digest with each of 100 tokens and notes the use
// (no store write: the last use is written by the flush timer).
func BenchmarkTokensVerify(b *testing.B) {
	quiet := slog.New(slog.DiscardHandler)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	defer sys.Shutdown()
	c, err := SpawnTokens(sys, TokensOptions{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var last CreatedToken
	for i := range 100 {
		if last, err = c.Create(ctx, TokenSpec{Name: "t" + strconv.Itoa(i), Servers: []string{"*"}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, ok := c.Verify(ctx, last.Token, true); !ok {
			b.Fatal("not verified")
		}
	}
}
