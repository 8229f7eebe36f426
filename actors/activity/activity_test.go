package activity

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/config"
)

// secretsOf is a fixed Secrets for the tests.
type secretsOf []string

func (s secretsOf) SecretsGeneration() uint64       { return 1 }
func (s secretsOf) SecretValues() ([]string, error) { return s, nil }

func start(t testing.TB, cfg config.Activity, secrets Secrets) (*Client, *store.Store, *atomic.Int64) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	var written atomic.Int64
	c, err := Spawn(sys, Options{Store: st, Config: cfg, Secrets: secrets, AgeCheckEvery: 20 * time.Millisecond,
		Written: func(n int) { written.Add(int64(n)) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Error(err)
		}
		sys.Shutdown()
		st.Close()
	})
	return c, st, &written
}

func listPage(t testing.TB, c *Client, q Query) Page {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := c.List(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRecordsScrubbedCappedAndPaged: ids increase, secrets are replaced in strings and
// keys (also where JSON escaping would hide them), long arguments are cut with truncated,
// a listing sees every record recorded before it, and pages follow by cursor.
func TestRecordsScrubbedCappedAndPaged(t *testing.T) {
	const secret = `s3cr3t<&>"value`
	c, st, _ := start(t, config.Activity{}, secretsOf{secret})
	args, _ := json.Marshal(map[string]any{"token": secret, secret: []any{"x " + secret}})
	c.Record(Record{Server: "a", Tool: "t", Outcome: OutcomeOK, Arguments: args, Error: "failed with " + secret, StartedAt: time.Now()})
	c.Record(Record{Server: "a", Tool: "t", Outcome: OutcomeOK, Arguments: json.RawMessage(`{"big":"` + strings.Repeat("é", 6000) + `"}`), StartedAt: time.Now()})
	for i := range 10 {
		c.Record(Record{Server: "b", Tool: "u", Outcome: OutcomeError, Reason: "TIMEOUT", StartedAt: time.Now(), SessionID: string(rune('a' + i))})
	}
	p := listPage(t, c, Query{Limit: 1000})
	if len(p.Records) != 12 || p.Records[0].ID != 12 || p.Records[11].ID != 1 || p.Next != 0 {
		t.Fatalf("records %d, first %d, next %d", len(p.Records), p.Records[0].ID, p.Next)
	}
	first := p.Records[11]
	if strings.Contains(string(first.Arguments), "s3cr3t") || strings.Contains(first.Error, "s3cr3t") ||
		!strings.Contains(string(first.Arguments), config.Redacted) {
		t.Errorf("not scrubbed: %s / %s", first.Arguments, first.Error)
	}
	big := p.Records[10]
	var s string
	if !big.Truncated || len(big.Arguments) > MaxArgumentBytes || json.Unmarshal(big.Arguments, &s) != nil || !strings.HasPrefix(s, `{"big":"éé`) {
		t.Errorf("truncation: truncated=%v, %d bytes", big.Truncated, len(big.Arguments))
	}
	_ = st.ScanActivity(0, func(_ uint64, data []byte) bool {
		if strings.Contains(string(data), "s3cr3t") {
			t.Errorf("secret stored: %s", data)
		}
		return true
	})
	// Pages of 4 over server b, newest first, while more arrive.
	page := listPage(t, c, Query{Filter: Filter{Server: "b"}, Limit: 4})
	c.Record(Record{Server: "b", Tool: "u", Outcome: OutcomeOK, StartedAt: time.Now()})
	var ids []uint64
	for {
		for _, r := range page.Records {
			ids = append(ids, r.ID)
		}
		if page.Next == 0 {
			break
		}
		page = listPage(t, c, Query{Filter: Filter{Server: "b"}, Before: page.Next, Limit: 4})
	}
	if len(ids) != 10 || ids[0] != 12 || ids[9] != 3 {
		t.Errorf("paged ids %v", ids)
	}
	ctx := context.Background()
	if r, err := c.Get(ctx, 5); err != nil || r.ID != 5 || r.Reason != "TIMEOUT" {
		t.Errorf("get 5: %+v %v", r, err)
	}
	if _, err := c.Get(ctx, 999); err != ErrNotFound {
		t.Errorf("get 999: %v", err)
	}
}

// TestRetention: max_records keeps the newest; max_age, changed live, drops the old ones
// without a new call; record_arguments off stores none; ids go on after a restart.
func TestRetention(t *testing.T) {
	c, st, written := start(t, config.Activity{MaxRecords: 5}, nil)
	for range 8 {
		c.Record(Record{Server: "a", Arguments: json.RawMessage(`{"x":1}`), StartedAt: time.Now()})
	}
	p := listPage(t, c, Query{})
	if len(p.Records) != 5 || p.Records[4].ID != 4 {
		t.Fatalf("kept %d records, oldest %d", len(p.Records), p.Records[len(p.Records)-1].ID)
	}
	off := false
	c.Configure(config.Activity{MaxRecords: 5, RecordArguments: &off})
	c.Record(Record{Server: "a", Arguments: json.RawMessage(`{"x":1}`), StartedAt: time.Now()})
	if p := listPage(t, c, Query{Limit: 1}); len(p.Records[0].Arguments) != 0 || p.Records[0].ID != 9 {
		t.Errorf("record_arguments off: %+v", p.Records[0])
	}
	c.Configure(config.Activity{MaxRecords: 5, MaxAge: config.Duration(time.Millisecond)})
	deadline := time.Now().Add(10 * time.Second)
	for len(listPage(t, c, Query{}).Records) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("max_age did not empty the log")
		}
		time.Sleep(5 * time.Millisecond) // polling the actor's answer, bounded above
	}
	if written.Load() != 9 {
		t.Errorf("written %d, want 9", written.Load())
	}
	if _, last, err := st.ActivityBounds(); err != nil || last != 9 {
		t.Errorf("last id %d %v", last, err)
	}
}
