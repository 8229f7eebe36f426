package test

import (
	"log/slog"
	"os"
	"testing"
)

// testLogger logs to the test's output when MCPPROXY_TEST_LOG=1, else discards.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("MCPPROXY_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
