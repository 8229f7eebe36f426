package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// ValidationError is a config that does not validate; Errors lists every problem.
type ValidationError struct {
	Errors []FieldError
}

// Error joins the problems as "field: message" items.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Field + ": " + fe.Message
	}
	return "invalid config: " + strings.Join(parts, "; ")
}

// Load reads and parses the config file at path. The result is not normalised (see Normalize).
// A file that does not parse or validate gives a *ValidationError (not wrapped); a missing file
// gives an error that matches fs.ErrNotExist.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, errs := Parse(data)
	if len(errs) > 0 {
		return nil, &ValidationError{Errors: errs}
	}
	return c, nil
}

// LoadOrCreate loads the config file at path; if there is none, it writes a default config (no
// servers, "mcpServers": []) with mode 0600, creating the directory with mode 0700 if needed,
// and returns that with created true.
func LoadOrCreate(path string) (cfg *Config, created bool, err error) {
	cfg, err = Load(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return cfg, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("create config dir: %w", err)
	}
	cfg = &Config{Servers: []ServerConfig{}}
	if _, err := Save(path, cfg); err != nil {
		return nil, false, err
	}
	return cfg, true, nil
}

// Marshal is the canonical JSON form Save writes: indented, the list form of mcpServers, and
// explicit "enabled" and "quarantined" booleans on every server so that the file says what the
// proxy does. Unset top-level settings stay out of it. HTML characters are not escaped, so
// commands such as "a && b" read as written.
func Marshal(c *Config) ([]byte, error) {
	if c == nil {
		return nil, errors.New("marshal config: nil config")
	}
	// A shallow copy with a list of its own is enough: the encoder only reads, and only the
	// flags are set here. A deep clone made saving 10,000 servers twice as slow.
	out := *c
	out.Servers = make([]ServerConfig, len(c.Servers))
	for i, s := range c.Servers {
		enabled, quarantined := s.IsEnabled(), s.IsQuarantined()
		s.Enabled, s.Quarantined = &enabled, &quarantined
		out.Servers[i] = s
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	return buf.Bytes(), nil
}

// Save writes c to path atomically with mode 0600 and returns the bytes written, so that a
// watcher can recognise its own write (Watcher.Expect).
//
// The data goes to a temporary file in the same directory, which is synced, renamed over path
// and followed by a sync of the directory: a crash at any point leaves either the old or the new
// file, never a torn one, and no temporary file is left behind on error. A config that does not
// validate is refused with a *ValidationError, so the file on disk always loads. If path is a
// symlink, the file it points to is replaced and the link kept.
func Save(path string, c *Config) ([]byte, error) {
	return SaveNotify(path, c, nil)
}

// SaveNotify is Save that calls before (when not nil) with the exact bytes just before they
// are written, so that a watcher can recognise the write as its own; it saves marshalling
// the config a second time for that.
func SaveNotify(path string, c *Config, before func(data []byte)) ([]byte, error) {
	data, err := Prepare(c)
	if err != nil {
		return nil, err
	}
	if before != nil {
		before(data)
	}
	if err := WriteFileAtomic(path, data); err != nil {
		return nil, fmt.Errorf("save config: %w", err)
	}
	return data, nil
}

// WriteFileAtomic writes data to path with mode 0600 as Save does (a temporary file in the
// same directory, synced, renamed over path, the directory synced; through a symlink), so
// that a crash leaves the old file or the new one. mcpproxy connect writes other clients'
// configs, which hold the API key, with it too.
func WriteFileAtomic(path string, data []byte) (err error) {
	path = linkTarget(path)
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes the rename durable. Windows cannot sync a directory and does not need to.
//
// Why two syncs (the file's, then the directory's) and not one: an answer that says a flag
// change is saved must survive a power cut. Without the directory's sync the rename sits in
// the file system's journal for up to its commit interval (5 s on ext4), and a crash then
// brings back the old file: the change the answer confirmed is lost. Writing the file in
// place (truncate, write, sync: one sync) leaves a torn file on a crash in the middle, which
// does not load, and the config is the user's file. Keeping the flag in pebble first (one WAL
// sync) and the file after would make two sources of truth that disagree whenever the user
// edits the file while the daemon is down. Measured (strace -T, load average 9): the file's
// sync 0.7-4 ms, the rename 0.7-4 ms, the directory's sync 0.7-4 ms; on a quiet machine
// about 0.3 ms each, so the two syncs do not keep a disable above 5 ms by themselves.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return err
	}
	return d.Close()
}

// linkTarget is the file a config path stands for: the file a symlink points to (a config
// kept in a dotfiles repo is written through its link, not replaced by a regular file), or
// path itself when it is no link or its target cannot be resolved.
func linkTarget(path string) string {
	if target, err := filepath.EvalSymlinks(path); err == nil {
		return target
	}
	return path
}

// RemoveStaleTemps deletes the temp files a Save interrupted by a crash left next to the
// config file. Call it at start, before anything saves: a running Save's temp file would be
// removed too.
func RemoveStaleTemps(path string) {
	path = linkTarget(path)
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*"))
	for _, m := range matches {
		_ = os.Remove(m)
	}
}
