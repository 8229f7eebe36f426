package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/config"
)

// countOver returns an over callback and the number of times it ran.
func countOver() (func(error), *int) {
	n := new(int)
	return func(err error) {
		if !errors.Is(err, ErrMessageTooLarge) {
			panic(fmt.Sprintf("over called with %v", err))
		}
		*n++
	}, n
}

// smallReads hands out at most n bytes per Read, so the limiters see messages split
// across reads as they are on a socket.
type smallReads struct {
	r io.Reader
	n int
}

func (s smallReads) Read(p []byte) (int, error) {
	if len(p) > s.n {
		p = p[:s.n]
	}
	return s.r.Read(p)
}

func TestBodyLimiter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int
		failed bool
	}{
		{"empty", 0, false},
		{"under", 99, false},
		{"exactly the limit", 100, false},
		{"one byte over", 101, true},
		{"far over", 10_000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			over, calls := countOver()
			b := &bodyLimiter{rc: io.NopCloser(smallReads{bytes.NewReader(bytes.Repeat([]byte("x"), tc.size)), 7}), max: 100, over: over}
			got, err := io.ReadAll(b)
			if tc.failed {
				if !errors.Is(err, ErrMessageTooLarge) || !strings.Contains(err.Error(), "max_message_bytes (100)") {
					t.Fatalf("err = %v, want ErrMessageTooLarge naming the limit", err)
				}
				if *calls != 1 {
					t.Fatalf("over called %d times, want 1", *calls)
				}
				if len(got) != 0 {
					t.Fatalf("%d bytes of an oversized body were handed on", len(got))
				}
				if _, err := b.Read(make([]byte, 10)); !errors.Is(err, ErrMessageTooLarge) {
					t.Fatalf("a Read after the failure: %v", err)
				}
				return
			}
			if err != nil || len(got) != tc.size || *calls != 0 {
				t.Fatalf("read %d of %d bytes, err %v, over called %d times", len(got), tc.size, err, *calls)
			}
		})
	}
}

func TestEventLimiter(t *testing.T) {
	long := strings.Repeat("y", 60)
	small := strings.Repeat("data: "+long+"\n\n", 5)
	for _, tc := range []struct {
		name   string
		stream string
		failed bool
		before string // what is handed on before a failure: the whole events before it
	}{
		// A stream is endless by nature: many events, each under the limit, pass however
		// much they add up to.
		{"many small events (LF)", strings.Repeat("event: message\ndata: "+long+"\n\n", 200), false, ""},
		{"many small events (CRLF)", strings.Repeat("data: "+long+"\r\n\r\n", 200), false, ""},
		{"keep-alive comments", strings.Repeat(": ping\n\n", 1000), false, ""},
		{"blank line of carriage returns ends the event", strings.Repeat("data: "+long+"\n\r\r\n", 200), false, ""},
		{"one endless line", "event: endpoint\ndata: /m?s=" + strings.Repeat("z", 500), true, ""},
		{"small events, then an endless one", small + "data: " + strings.Repeat("z", 500), true, small},
		{"an unterminated last event is handed on at the end", small + "data: tail", false, ""},
		{"many short data lines in one event", strings.Repeat("data: ab\n", 100), true, ""},
		// mcp-go splits lines only at '\n', so carriage returns alone must not reset the count.
		{"CR-only line endings", strings.Repeat("data: "+long+"\r\r", 200), true, ""},
		{"endless carriage returns", strings.Repeat("\r", 500), true, ""},
		{"an event exactly at the limit", "data: " + strings.Repeat("q", 93) + "\n\n", false, ""},
		{"an event one byte over", "data: " + strings.Repeat("q", 94) + "\n\n", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			over, calls := countOver()
			e := newEventLimiter(io.NopCloser(smallReads{strings.NewReader(tc.stream), 13}), 100, over)
			got, err := io.ReadAll(e)
			if tc.failed {
				if !errors.Is(err, ErrMessageTooLarge) || *calls != 1 {
					t.Fatalf("err = %v, over called %d times; want ErrMessageTooLarge once", err, *calls)
				}
				if string(got) != tc.before {
					t.Fatalf("handed on %q, want only the whole events before the oversized one, %q", got, tc.before)
				}
				return
			}
			if err != nil || string(got) != tc.stream {
				t.Fatalf("err = %v, passed %d of %d bytes", err, len(got), len(tc.stream))
			}
		})
	}
}

// endless writes chunk to w until the client goes away.
func endless(w http.ResponseWriter, chunk string) {
	b := []byte(strings.Repeat(chunk, 64<<10/len(chunk)+1))
	for {
		if _, err := w.Write(b); err != nil {
			return
		}
	}
}

// TestLimitTransport drives the wrapped client against a real HTTP server: an endless JSON
// answer and an endless error body fail at the limit, an event stream of small events
// flows on past it, and one endless event fails.
func TestLimitTransport(t *testing.T) {
	const limit = 64 << 10
	mux := http.NewServeMux()
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"x":"`)
		endless(w, "a")
	})
	mux.HandleFunc("/error", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		endless(w, "<p>bad gateway</p>")
	})
	mux.HandleFunc("/sized", func(w http.ResponseWriter, r *http.Request) {
		// Told by Content-Length: failed before a byte is read.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(limit+1))
		_, _ = w.Write(bytes.Repeat([]byte(" "), limit+1))
	})
	mux.HandleFunc("/fits", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(bytes.Repeat([]byte(" "), limit))
	})
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		for range 4 * limit / 64 {
			_, _ = io.WriteString(w, "event: message\ndata: "+strings.Repeat("e", 40)+"\n\n")
		}
	})
	mux.HandleFunc("/endless-event", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "event: endpoint\ndata: /message?sessionId=")
		endless(w, "s")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, tc := range []struct {
		path   string
		failed bool
	}{{"/json", true}, {"/error", true}, {"/sized", true}, {"/fits", false}, {"/events", false}, {"/endless-event", true}} {
		t.Run(tc.path, func(t *testing.T) {
			over, calls := countOver()
			c := newHTTPClient(limit, over)
			defer c.CloseIdleConnections()
			resp, err := c.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if tc.failed {
				if !errors.Is(err, ErrMessageTooLarge) || *calls != 1 || n > limit {
					t.Fatalf("read %d bytes, err %v, over called %d times; want ErrMessageTooLarge at %d", n, err, *calls, limit)
				}
				return
			}
			if err != nil || (n < 2*limit && tc.path == "/events") || (n != limit && tc.path == "/fits") || *calls != 0 {
				t.Fatalf("read %d bytes, err %v, over called %d times; want the whole stream", n, err, *calls)
			}
		})
	}
}

// TestDialBounded dials remote upstreams that never end their first message: a streamable
// HTTP server answering initialize with an endless JSON body, and a legacy SSE server
// whose endpoint event line never ends. Both dials fail at once with ErrMessageTooLarge,
// Dial and DialRaw alike, rather than after a timeout or an exhausted memory.
func TestDialBounded(t *testing.T) {
	noLeaks(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"`)
		endless(w, "9")
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "event: endpoint\ndata: /message?sessionId=")
		endless(w, "0123456789")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer srv.CloseClientConnections()

	opts := Options{MaxMessageBytes: 1 << 20, InitTimeout: 20 * time.Second}
	for _, tc := range []struct{ name, protocol, path string }{
		{"http", "http", "/mcp"},
		{"sse", "sse", "/sse"},
	} {
		cfg := config.ServerConfig{Name: tc.name, Protocol: tc.protocol, URL: srv.URL + tc.path}
		t.Run("Dial "+tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			conn, err := Dial(ctx, cfg, opts)
			if err == nil {
				conn.Close()
				t.Fatal("dial succeeded")
			}
			if !errors.Is(err, ErrMessageTooLarge) || !strings.Contains(err.Error(), "max_message_bytes (1048576)") {
				t.Fatalf("err = %v, want ErrMessageTooLarge naming the limit", err)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("the error quotes the body: %d bytes", len(err.Error()))
			}
			t.Logf("failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
		})
		t.Run("DialRaw "+tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			rc, err := DialRaw(ctx, cfg, opts, RawHandlers{})
			if err == nil && tc.protocol == "http" {
				// Streamable HTTP dials without a request; the agent's initialize is the
				// first, and its answer hits the limit.
				defer rc.Close()
				_, _, err = rc.Call(ctx, rc.NewID(), "initialize", []byte(`{}`))
				if !errors.Is(err, ErrConnLost) || !errors.Is(rc.Err(), ErrMessageTooLarge) {
					t.Fatalf("initialize: %v; Err %v; want the connection lost with ErrMessageTooLarge", err, rc.Err())
				}
				return
			}
			if err == nil {
				rc.Close()
				t.Fatal("dial succeeded")
			}
			if !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("err = %v, want ErrMessageTooLarge", err)
			}
		})
	}
}

func TestLineLimiter(t *testing.T) {
	lines := strings.Repeat(`{"jsonrpc":"2.0","method":"x"}`+"\n", 20)
	for _, tc := range []struct {
		name, stream string
		failed       bool
		before       string // whole lines handed on before the failure
	}{
		{"lines under the limit", lines, false, ""},
		{"a line exactly at the limit", strings.Repeat("a", 100) + "\n", false, ""},
		{"an unterminated last line is handed on at the end", lines + "tail", false, ""},
		{"lines, then an endless one", lines + strings.Repeat("b", 500), true, lines},
		{"one byte over", strings.Repeat("a", 101) + "\n", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errs []error
			l := newLineLimiter(smallReads{strings.NewReader(tc.stream), 13}, 100, func(err error) { errs = append(errs, err) })
			got, err := io.ReadAll(l)
			if tc.failed {
				if !errors.Is(err, ErrMessageTooLarge) || len(errs) != 1 || !errors.Is(errs[0], ErrMessageTooLarge) {
					t.Fatalf("err = %v, onErr got %v; want ErrMessageTooLarge once", err, errs)
				}
				if string(got) != tc.before {
					t.Fatalf("handed on %q, want only the whole lines before the long one", got)
				}
				return
			}
			if err != nil || string(got) != tc.stream {
				t.Fatalf("err = %v, passed %d of %d bytes", err, len(got), len(tc.stream))
			}
			if len(errs) == 0 || !strings.Contains(errs[0].Error(), "stdout closed") {
				t.Fatalf("onErr got %v, want stdout closed at the end", errs)
			}
		})
	}
}

// BenchmarkBodyLimiter measures the cost of bounding one ordinary 4 KiB JSON answer.
func BenchmarkBodyLimiter(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 4<<10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	buf := make([]byte, 512) // json.Decoder's first read
	for b.Loop() {
		l := &bodyLimiter{rc: io.NopCloser(bytes.NewReader(body)), max: 16 << 20, length: -1}
		for {
			if _, err := l.Read(buf); err != nil {
				break
			}
		}
	}
}

// BenchmarkEventLimiter measures the scan of an event stream of 1 KiB events read through
// a 4 KiB buffer, as mcp-go's bufio.Reader reads it.
func BenchmarkEventLimiter(b *testing.B) {
	stream := []byte(strings.Repeat("event: message\ndata: "+strings.Repeat("d", 1000)+"\n\n", 1024))
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	buf := make([]byte, 4<<10)
	for b.Loop() {
		e := newEventLimiter(io.NopCloser(bytes.NewReader(stream)), 16<<20, nil)
		for {
			if _, err := e.Read(buf); err != nil {
				break
			}
		}
	}
}
