package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	keep := filepath.Join(dir, "other.tmp-1")
	for _, f := range []string{path, keep, filepath.Join(dir, "."+FileName+".tmp-123"), filepath.Join(dir, "."+FileName+".tmp-abc")} {
		if err := os.WriteFile(f, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	RemoveStaleTemps(path)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("left %v, want the config and the unrelated file", entries)
	}
	if _, err := os.Stat(path); err != nil {
		t.Error("the config itself was removed")
	}
}
