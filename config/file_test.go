package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestMarshalCanonical(t *testing.T) {
	c, errs := Parse([]byte(`{"tools_limit": 20, "mcpServers": {"b": {"command": "a && b", "enabled": false}, "a": {"url": "https://h/x"}}}`))
	if errs != nil {
		t.Fatal(errs)
	}
	data, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "tools_limit": 20,
  "mcpServers": [
    {
      "name": "b",
      "command": "a && b",
      "enabled": false,
      "quarantined": true
    },
    {
      "name": "a",
      "url": "https://h/x",
      "enabled": true,
      "quarantined": true
    }
  ]
}
`
	if string(data) != want {
		t.Errorf("Marshal =\n%s\nwant\n%s", data, want)
	}
	if c.Servers[0].Quarantined != nil {
		t.Error("Marshal changed its argument")
	}

	empty, err := Marshal(&Config{})
	if err != nil || !bytes.Contains(empty, []byte(`"mcpServers": []`)) {
		t.Errorf("Marshal of an empty config = %s, %v; want an empty list", empty, err)
	}
	if _, err := Marshal(nil); err == nil {
		t.Error("Marshal(nil) did not fail")
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	c := &Config{
		APIKey: "secret-key", CallToolTimeout: Duration(DefaultCallToolTimeout),
		Servers: []ServerConfig{{Name: "a", Command: "npx", Args: []string{"-y", "pkg"}, Env: map[string]string{"K": "${secret:K}"}, Quarantined: ptr(false)}},
	}
	data, err := Save(path, c)
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(onDisk, data) {
		t.Fatalf("Save returned bytes that differ from the file (%v)", err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := Compare(c, got); len(d.Unchanged) != 1 || !diffEmpty(d) {
		t.Errorf("round trip changed the config: %+v", d)
	}
	if got.APIKey != "secret-key" || got.CallToolTimeout != c.CallToolTimeout {
		t.Errorf("round trip lost top-level values: %+v", got)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"listen": 1, "mcpServers": [{"name": "x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(bad)
	ve, ok := err.(*ValidationError)
	if !ok {
		t.Fatalf("err = %T %v, want *ValidationError", err, err)
	}
	if got := fields(ve.Errors); strings.Join(got, ",") != "listen,mcpServers[0].command" {
		t.Errorf("fields = %q", got)
	}
}

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", FileName)
	c, created, err := LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreate = %v, %v", created, err)
	}
	if c.Servers == nil || len(c.Servers) != 0 {
		t.Errorf("default config has servers: %+v", c.Servers)
	}
	data, err := os.ReadFile(path)
	if err != nil || !bytes.Contains(data, []byte(`"mcpServers": []`)) {
		t.Fatalf("default file = %s, %v", data, err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", info.Mode().Perm())
	}
	if info, _ := os.Stat(filepath.Dir(path)); info.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", info.Mode().Perm())
	}
	if _, created, err := LoadOrCreate(path); err != nil || created {
		t.Errorf("second LoadOrCreate = %v, %v; want the existing file", created, err)
	}
}

func TestSaveRefusesInvalidAndKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	good := &Config{Servers: []ServerConfig{{Name: "a", Command: "c"}}}
	before, err := Save(path, good)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Save(path, &Config{Servers: []ServerConfig{{Name: "bad name", Command: "c"}}})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Save of an invalid config: err = %v, want *ValidationError", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("a refused Save changed the file")
	}
	if _, err := Save(filepath.Join(dir, "no-such-dir", FileName), good); err == nil {
		t.Error("Save into a missing directory did not fail")
	}
	assertOnlyFile(t, dir, FileName)
}

// TestSaveIsAtomic saves two different configs in turn while a reader reads the file in a
// loop: every read must be exactly one of the two complete contents, and no temporary file may
// remain.
func TestSaveIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	small := &Config{Servers: []ServerConfig{{Name: "a", Command: "c"}}}
	large := small.Clone()
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h"} {
		large.Servers = append(large.Servers, ServerConfig{Name: n, Command: strings.Repeat("x", 500)})
	}
	smallData, err := Save(path, small)
	if err != nil {
		t.Fatal(err)
	}
	largeData, err := Marshal(large)
	if err != nil {
		t.Fatal(err)
	}

	const saves, maxReads = 100, 200000
	done := make(chan struct{})
	var wg sync.WaitGroup
	var reads int
	var readErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for reads = 0; reads < maxReads; reads++ {
			select {
			case <-done:
				return
			default:
			}
			data, err := os.ReadFile(path)
			if err != nil {
				readErr = err
				return
			}
			if !bytes.Equal(data, smallData) && !bytes.Equal(data, largeData) {
				readErr = errors.New("torn read: " + string(data[:min(len(data), 80)]))
				return
			}
		}
	}()
	for i := range saves {
		c := small
		if i%2 == 0 {
			c = large
		}
		if _, err := Save(path, c); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if readErr != nil {
		t.Fatal(readErr)
	}
	if reads == 0 {
		t.Fatal("the reader never read")
	}
	t.Logf("%d reads during %d saves", reads, saves)
	assertOnlyFile(t, dir, FileName)
}

func assertOnlyFile(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != name {
			t.Errorf("unexpected file left in %s: %s", dir, e.Name())
		}
	}
}

func TestSaveKeepsSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.json")
	link := filepath.Join(dir, FileName)
	if err := os.WriteFile(target, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Skip("symlinks unavailable:", err)
	}
	data, err := Save(link, &Config{ToolsLimit: 7})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Lstat(link); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced (%v)", err)
	}
	if got, _ := os.ReadFile(target); !bytes.Equal(got, data) {
		t.Errorf("target = %s, want %s", got, data)
	}
}
