package test

// End-to-end tests of the data dir's permissions: the daemon (the built binary) makes an
// existing dir that others may enter private at start, or refuses to start when it cannot;
// the store writes its files private; the doctor reports a dir or files opened since.

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/actors/doctor"
)

// openEntries lists what in dir (dir included) has a group or other permission bit.
func openEntries(t *testing.T, dir string) []string {
	t.Helper()
	var open []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a file pebble removed meanwhile
		}
		if err != nil {
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o077 != 0 && info.Mode()&fs.ModeSymlink == 0 {
			open = append(open, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return open
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

func TestDataDirMadePrivateAtStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // Mkdir's mode is less the umask
		t.Fatal(err)
	}
	// What an older version or a copy may have left: a file and a dir others can read.
	notes := filepath.Join(dir, "notes.txt")
	old := filepath.Join(dir, "old")
	if err := os.WriteFile(notes, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(old, 0o755); err != nil {
		t.Fatal(err)
	}
	for path, m := range map[string]os.FileMode{notes: 0o644, old: 0o755} {
		if err := os.Chmod(path, m); err != nil {
			t.Fatal(err)
		}
	}

	p := startProxyProcess(t, dir, servers(stdioFixture(t, "fx")))
	if m := mode(t, dir); m != 0o700 {
		t.Fatalf("data dir has mode %04o after start, want 0700", m)
	}
	if m := mode(t, notes); m != 0o600 {
		t.Errorf("notes.txt has mode %04o after start, want 0600", m)
	}
	if m := mode(t, old); m != 0o700 {
		t.Errorf("old/ has mode %04o after start, want 0700", m)
	}
	log := p.Log()
	if !strings.Contains(log, "data dir was open to other users") || !strings.Contains(log, "mode=0755") {
		t.Errorf("no warning that the data dir was tightened:\n%s", log)
	}
	for _, name := range []string{"secrets.key", "notes.txt"} {
		if strings.Contains(log, name) {
			t.Errorf("the log names %s:\n%s", name, log)
		}
	}
	// The store writes under the umask; what it writes must be private all the same.
	if open := openEntries(t, dir); len(open) > 0 {
		t.Errorf("open to other users after start: %v", open)
	}
	rep := p.getDoctor()
	for _, name := range []string{doctor.CheckDataDir, doctor.CheckDataDirFiles} {
		if len(checksOf(rep, name, doctor.OK)) != 1 {
			t.Errorf("no ok %s check after start: %+v", name, rep.Checks)
		}
	}

	// Opened since start: the doctor, over the API and as the CLI, says so.
	if err := os.Chmod(notes, 0o644); err != nil {
		t.Fatal(err)
	}
	if rep := p.getDoctor(); !hasCheck(rep, doctor.CheckDataDirFiles, doctor.Warn, "notes.txt (0644)", "chmod -R go-rwx") || !rep.Healthy {
		t.Errorf("doctor on an open file in a private dir: %+v", rep)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rep = p.getDoctor()
	if rep.Healthy || !hasCheck(rep, doctor.CheckDataDir, doctor.Fail, "mode 0755", "chmod 700") ||
		!hasCheck(rep, doctor.CheckDataDirFiles, doctor.Fail, "notes.txt (0644)", "chmod -R go-rwx") {
		t.Errorf("doctor on an open dir with an open file: %+v", rep)
	}
	res := runCLI(t, dir, "", "doctor")
	if res.code != 1 || !strings.Contains(res.stdout, "FAIL  data_dir_files") || !strings.Contains(res.stdout, "notes.txt (0644)") {
		t.Errorf("mcpproxy doctor on an open dir with an open file: %+v", res)
	}
}

// TestDataDirRefusedWhenItCannotBeMadePrivate makes the dir immutable (chattr +i), which
// even root cannot chmod: the daemon must refuse to start, saying why and what to do.
func TestDataDirRefusedWhenItCannotBeMadePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot make a dir that refuses chmod here (chattr +i: %v %s)", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", dir).Run() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binaries(t), "mcpproxy"), "serve", "--data-dir", dir, "--listen", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("serve on a dir that cannot be made private: %v\n%s", err, out)
	}
	for _, want := range []string{"has mode 0755", "cannot be made private", "chmod 700"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
}
