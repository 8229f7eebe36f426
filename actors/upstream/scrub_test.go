package upstream

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/config"
)

// lockedBuffer collects log output written from transport goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDialErrorsAreScrubbed dials upstreams that fail in ways that quote a secret: a child
// that prints it on stderr and exits, and remotes on a closed port whose URL carries it
// (Go's url.Error quotes the whole URL). Neither the error, nor Stderr, nor a transport
// log line may hold it.
func TestDialErrorsAreScrubbed(t *testing.T) {
	const secret = "stderr-secret-9c1d"
	tests := []struct {
		name   string
		cfg    config.ServerConfig
		scrub  *config.Scrubber
		hidden []string
	}{
		{"stdio child echoes its env to stderr",
			config.ServerConfig{Protocol: "stdio", Command: "sh", Args: []string{"-c", "echo token=$T >&2; exit 3"},
				Env: map[string]string{"T": secret}},
			config.NewScrubber(secret), []string{secret}},
		{"http url with a token in the query",
			config.ServerConfig{Protocol: "http", URL: "http://127.0.0.1:1/mcp?token=q1&x=" + secret},
			nil, []string{"token=q1", secret}},
		{"http url with a password",
			config.ServerConfig{Protocol: "http", URL: "http://user:" + secret + "@127.0.0.1:1/mcp"},
			nil, []string{secret}},
		{"sse url with a token in the query",
			config.ServerConfig{Protocol: "sse", URL: "http://127.0.0.1:1/sse?token=" + secret},
			nil, []string{secret}},
	}
	for _, tt := range tests {
		for _, raw := range []bool{false, true} {
			name := tt.name
			if raw {
				name += " (raw)"
			}
			t.Run(name, func(t *testing.T) {
				logs := &lockedBuffer{}
				opts := Options{Scrub: tt.scrub, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
					InitTimeout: 10 * time.Second}
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				var err error
				stderr := ""
				if raw {
					var rc *RawConn
					if rc, err = DialRaw(ctx, tt.cfg, opts, RawHandlers{}); err == nil {
						// The raw stdio dial does not wait for the child: the first call
						// meets its exit.
						_, _, err = rc.Call(ctx, rc.NewID(), "initialize", nil)
						if err == nil {
							err = rc.Err()
						}
						waitDone(t, rc)
						stderr = rc.Stderr()
						if e := rc.Err(); e != nil && strings.Contains(e.Error(), secret) {
							t.Errorf("Err = %q", e)
						}
						rc.Close()
					}
				} else {
					var conn *Conn
					if conn, err = Dial(ctx, tt.cfg, opts); err == nil {
						conn.Close()
					}
				}
				if err == nil {
					t.Fatal("dial succeeded")
				}
				msg := err.Error()
				for _, h := range tt.hidden {
					if strings.Contains(msg, h) || strings.Contains(stderr, h) {
						t.Errorf("error %q or stderr %q holds %q", msg, stderr, h)
					}
					if strings.Contains(logs.String(), h) {
						t.Errorf("transport log holds %q:\n%s", h, logs.String())
					}
				}
				if !strings.Contains(msg+stderr, config.Redacted) {
					t.Errorf("error %q (stderr %q) shows no trace of the redaction", msg, stderr)
				}
			})
		}
	}
}

// waitDone waits (bounded) until a raw connection is lost, as a child that exits is.
func waitDone(t *testing.T, rc *RawConn) {
	t.Helper()
	if rc.PID() == 0 {
		return
	}
	select {
	case <-rc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the child did not exit")
	}
}

func TestScrubHandler(t *testing.T) {
	const secret = "log-secret-77aa"
	var out bytes.Buffer
	s := config.NewScrubber(secret)
	l := slog.New(&scrubHandler{h: slog.NewJSONHandler(&out, nil), s: s})
	type detail struct{ Token string }
	l.With("pre", "x-"+secret).WithGroup("g").Info("message "+secret,
		"str", secret, "err", errors.New("failed: "+secret), "url", "http://h/?k=v",
		"struct", detail{secret}, slog.Group("grp", "inner", secret), "n", 42)
	got := out.String()
	if strings.Contains(got, secret) || strings.Contains(got, "k=v") {
		t.Errorf("log line holds a secret: %s", got)
	}
	if !strings.Contains(got, `"n":42`) || strings.Count(got, config.Redacted) < 6 {
		t.Errorf("log line lost its shape: %s", got)
	}
}

// TestStderrExcerptCutAfterScrubbing: the excerpt keeps the last few hundred bytes of a long
// line; a secret across that cut must not leave its tail behind.
func TestStderrExcerptCutAfterScrubbing(t *testing.T) {
	const secret = "straddle-secret-tail-5e6f"
	cfg := config.ServerConfig{Protocol: "stdio", Command: "sh", Env: map[string]string{"T": secret},
		Args: []string{"-c", `printf '%s%0490d\n' "$T" 0 >&2; exit 1`}}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, err := Dial(ctx, cfg, Options{Scrub: config.NewScrubber(secret)})
	if err == nil {
		t.Fatal("dial succeeded")
	}
	if strings.Contains(err.Error(), "tail-5e6f") || !strings.Contains(err.Error(), config.Redacted+"0000") {
		t.Errorf("error = %q", err)
	}
}
