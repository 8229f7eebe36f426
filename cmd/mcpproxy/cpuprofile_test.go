package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCPUProfile: with MCPPROXY_CPU_PROFILE the run's profile is written when it stops (a
// gzip-compressed pprof file), a path that cannot be created is refused at once, and
// without the variable nothing is written.
func TestCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	t.Setenv(cpuProfileEnv, path)
	stop, err := startCPUProfile()
	if err != nil {
		t.Fatal(err)
	}
	stop()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		t.Fatalf("not a gzip-compressed profile: % x", data[:min(len(data), 8)])
	}

	t.Setenv(cpuProfileEnv, filepath.Join(t.TempDir(), "no-such-dir", "cpu.pprof"))
	if _, err := startCPUProfile(); err == nil {
		t.Fatal("a profile path that cannot be created was accepted")
	}

	t.Setenv(cpuProfileEnv, "")
	stop, err = startCPUProfile()
	if err != nil {
		t.Fatal(err)
	}
	stop()
}

// TestTrace: with MCPPROXY_TRACE the run's execution trace is written when it stops, and a
// path that cannot be created is refused at once.
func TestTrace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.trace")
	t.Setenv(traceEnv, path)
	stop, err := startCPUProfile()
	if err != nil {
		t.Fatal(err)
	}
	stop()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "go 1.") {
		t.Fatalf("not an execution trace: %q", data[:min(len(data), 16)])
	}
	t.Setenv(traceEnv, filepath.Join(t.TempDir(), "no-such-dir", "run.trace"))
	if _, err := startCPUProfile(); err == nil {
		t.Fatal("a trace path that cannot be created was accepted")
	}
}
