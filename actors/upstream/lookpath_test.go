package upstream

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLookPath checks the one rule the spawn and the doctor share: a path is taken relative
// to the working dir, a bare name is searched in the given PATH, and either must be an
// executable file.
func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("tool", 0o755)
	write("plain", 0o644)
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, command, workDir, path string
		want, wantErr                string
	}{
		{"bare name in PATH", "tool", "", "/nonexistent:" + dir, filepath.Join(dir, "tool"), ""},
		{"bare name not in PATH", "tool", "", "/nonexistent", "", "not found in PATH"},
		{"not executable in PATH is skipped", "plain", "", dir, "", "not found in PATH"},
		{"directory in PATH is skipped", "sub", "", dir, "", "not found in PATH"},
		{"relative path from working dir", "./tool", dir, "", filepath.Join(dir, "tool"), ""},
		{"absolute path", filepath.Join(dir, "tool"), "", "", filepath.Join(dir, "tool"), ""},
		{"path that is not executable", filepath.Join(dir, "plain"), "", "", "", "is not an executable file"},
		{"path that is a directory", filepath.Join(dir, "sub"), "", "", "", "is not an executable file"},
		{"missing path", "./nope", dir, "", "", "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LookPath(tt.command, tt.workDir, tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LookPath = %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("LookPath = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
