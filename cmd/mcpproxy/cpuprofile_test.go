package main

import (
	"os"
	"path/filepath"
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
