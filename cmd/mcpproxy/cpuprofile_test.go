package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecordings: with MCPPROXY_CPU_PROFILE the run's CPU profile (a gzip-compressed pprof
// file), with MCPPROXY_TRACE its execution trace, is written when it stops; a path that
// cannot be created is refused at once; without the variables nothing is written.
func TestRecordings(t *testing.T) {
	for _, c := range []struct {
		env  string
		file string
		ok   func(data []byte) bool
	}{
		{cpuProfileEnv, "cpu.pprof", func(d []byte) bool { return len(d) >= 2 && d[0] == 0x1f && d[1] == 0x8b }},
		{traceEnv, "run.trace", func(d []byte) bool { return strings.HasPrefix(string(d), "go 1.") }},
	} {
		t.Run(c.env, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), c.file)
			t.Setenv(c.env, path)
			stop, err := startCPUProfile()
			if err != nil {
				t.Fatal(err)
			}
			stop()
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !c.ok(data) {
				t.Fatalf("not what %s writes: % x", c.env, data[:min(len(data), 16)])
			}

			t.Setenv(c.env, filepath.Join(t.TempDir(), "no-such-dir", c.file))
			if _, err := startCPUProfile(); err == nil {
				t.Fatalf("a %s path that cannot be created was accepted", c.env)
			}
		})
	}

	dir := t.TempDir()
	t.Setenv(cpuProfileEnv, "")
	t.Setenv(traceEnv, "")
	t.Chdir(dir)
	stop, err := startCPUProfile()
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("without the variables, files were written: %v", entries)
	}
}
