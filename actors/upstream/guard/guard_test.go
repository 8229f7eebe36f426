package guard

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary is the guard when Env is set, as the daemon's binary is (actors/upstream).
func init() { Become() }

// startGuard runs script under a guard (this test binary again, as the daemon runs itself),
// started the way the daemon starts it (actors/upstream spawn).
func startGuard(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	path, args, env := Command("/proc/self/exe", "/bin/sh", []string{"sh", "-c", script}, []string{"PATH=" + os.Getenv("PATH")})
	cmd := exec.Command(path, args[1:]...)
	cmd.Args[0] = args[0]
	cmd.Env = env
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	})
	return cmd
}

// pidFrom waits (bounded) for a pid written to file and makes sure it is killed at cleanup.
func pidFrom(t *testing.T, file string) int {
	t.Helper()
	var pid int
	poll(t, "a pid in "+filepath.Base(file), func() bool {
		data, err := os.ReadFile(file)
		if err != nil || !strings.HasSuffix(string(data), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(data)))
		return err == nil
	})
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	return pid
}

// poll checks cond every 10 ms until it holds, for at most 10 s.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// exists reports whether pid has a /proc entry at all: a zombie still has one.
func exists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// waitExit waits (bounded) for the guard to exit and returns its status.
func waitExit(t *testing.T, cmd *exec.Cmd) syscall.WaitStatus {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("guard did not exit")
	}
	return cmd.ProcessState.Sys().(syscall.WaitStatus)
}

// An orphan below the guard (its parent, a subshell, exits at once) is reparented to the
// guard, not to init, and reaped by it when it exits rather than left a zombie.
func TestGuardAdoptsAndReapsOrphans(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pid")
	cmd := startGuard(t, `(sh -c 'echo $$ > `+f+`; exec sleep 0.5' &); exec sleep 1000`)
	pid := pidFrom(t, f)
	guard := cmd.Process.Pid
	poll(t, "the orphan to be reparented to the guard", func() bool {
		p, ok := procStat(pid)
		return ok && p.ppid == guard
	})
	poll(t, "the orphan to be reaped after it exits", func() bool { return !exists(pid) })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if ws := waitExit(t, cmd); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("guard status %v, want killed by SIGTERM", ws)
	}
}

// The guard's stop ends descendants in another session and group, even one that ignores
// SIGTERM (it gets SIGKILL after the grace), before the guard itself exits.
func TestGuardStopEndsEscapedDescendants(t *testing.T) {
	dir := t.TempDir()
	term := filepath.Join(dir, "term")
	stubborn := filepath.Join(dir, "stubborn")
	cmd := startGuard(t, `(setsid sh -c 'echo $$ > `+term+`; exec sleep 1000' &);`+
		`(setsid sh -c 'trap "" TERM; echo $$ > `+stubborn+`; while :; do sleep 1; done' &); exec sleep 1000`)
	pids := []int{pidFrom(t, term), pidFrom(t, stubborn)}
	for _, pid := range pids {
		if pgid, _ := syscall.Getpgid(pid); pgid != pid {
			t.Fatalf("descendant %d is in group %d, not its own", pid, pgid)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if ws := waitExit(t, cmd); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("guard status %v, want killed by SIGTERM (it ended by itself, not killed)", ws)
	}
	// No poll: the guard exits only once it has no child left, and these were its children.
	for _, pid := range pids {
		if exists(pid) {
			t.Errorf("descendant %d outlived the guard", pid)
		}
	}
}

// When the server's process exits by itself, the guard ends what it left behind and passes
// its exit status on.
func TestGuardChildExitEndsDescendants(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pid")
	cmd := startGuard(t, `(setsid sh -c 'echo $$ > `+f+`; exec sleep 1000' &); while [ ! -s `+f+` ]; do sleep 0.01; done; exit 3`)
	pid := pidFrom(t, f)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("guard ended with %v, want exit status 3", err)
	}
	if exists(pid) {
		t.Errorf("descendant %d outlived the server's exit", pid)
	}
}

// descendants, both ways, finds a process by its parent chain alone, whatever its session.
func TestDescendants(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pid")
	cmd := startGuard(t, `sh -c 'setsid sh -c "echo \$\$ > `+f+`; exec sleep 1000" & wait'`)
	pid := pidFrom(t, f)
	for name, walk := range map[string]func(int) []procID{"children files": descendants, "scan": scanDescendants} {
		t.Run(name, func(t *testing.T) {
			poll(t, "the grandchild among the guard's descendants", func() bool {
				for _, p := range walk(cmd.Process.Pid) {
					if p.pid == pid {
						return true
					}
				}
				return false
			})
			if own := walk(os.Getpid()); len(own) < 4 {
				t.Errorf("the test's descendants %v: want the guard, two shells and the sleeper at least", own)
			}
		})
	}
}

// BenchmarkDescendants is the cost of one /proc walk, which a guard does once per round
// when it stops (once, when nothing is left below it).
func BenchmarkDescendants(b *testing.B) {
	for b.Loop() {
		descendants(os.Getpid())
	}
}

// BenchmarkScanDescendants is the same walk on a kernel without the children files.
func BenchmarkScanDescendants(b *testing.B) {
	for b.Loop() {
		scanDescendants(os.Getpid())
	}
}
