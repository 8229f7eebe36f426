package guard

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary is the guard when Env is set, as the daemon's binary is (actors/upstream).
func init() { Become() }

// testWarden is a warden run by this test binary, as the daemon runs itself.
func testWarden(t *testing.T) *Warden {
	w := NewWarden("/proc/self/exe")
	t.Cleanup(func() {
		w.mu.Lock()
		s := w.cur
		w.mu.Unlock()
		if s != nil {
			_ = syscall.Kill(-s.pid, syscall.SIGKILL)
		}
	})
	return w
}

// startServer has w run script as a server, with stdin, stdout and stderr on /dev/null but
// for stderr, which goes to the test's.
func startServer(t *testing.T, w *Warden, script string) *Process {
	t.Helper()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	p, err := w.Start("/bin/sh", []string{"sh", "-c", script}, []string{"PATH=" + os.Getenv("PATH")}, "", null, null, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		waitDone(t, p)
	})
	return p
}

// wardenPID is the pid of w's running warden process.
func wardenPID(t *testing.T, w *Warden) int {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cur == nil {
		t.Fatal("no warden is running")
	}
	return w.cur.pid
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

// waitDone waits (bounded) for p's end and returns its error.
func waitDone(t *testing.T, p *Process) error {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the server's end was not reported")
	}
	return p.Err()
}

// An orphan below the guard (its parent, a subshell, exits at once) is reparented to the
// guard, not to init, and reaped by it when it exits rather than left a zombie.
func TestGuardAdoptsAndReapsOrphans(t *testing.T) {
	w := testWarden(t)
	f := filepath.Join(t.TempDir(), "pid")
	p := startServer(t, w, `(sh -c 'echo $$ > `+f+`; exec sleep 0.5' &); exec sleep 1000`)
	pid := pidFrom(t, f)
	guard := wardenPID(t, w)
	poll(t, "the orphan to be reparented to the guard", func() bool {
		o, ok := procStat(pid)
		return ok && o.ppid == guard
	})
	poll(t, "the orphan to be reaped after it exits", func() bool { return !exists(pid) })
	p.Stop()
	if err := waitDone(t, p); err == nil || err.Error() != "signal: terminated" {
		t.Errorf("server's end %v, want signal: terminated", err)
	}
}

// A stop ends the server's descendants in another session and group, even one that ignores
// SIGTERM (it gets SIGKILL after the grace), before the end is reported.
func TestGuardStopEndsEscapedDescendants(t *testing.T) {
	w := testWarden(t)
	dir := t.TempDir()
	term := filepath.Join(dir, "term")
	stubborn := filepath.Join(dir, "stubborn")
	p := startServer(t, w, `(setsid sh -c 'echo $$ > `+term+`; exec sleep 1000' &);`+
		`(setsid sh -c 'trap "" TERM; echo $$ > `+stubborn+`; while :; do sleep 1; done' &); exec sleep 1000`)
	pids := []int{pidFrom(t, term), pidFrom(t, stubborn)}
	for _, pid := range pids {
		if pgid, _ := syscall.Getpgid(pid); pgid != pid {
			t.Fatalf("descendant %d is in group %d, not its own", pid, pgid)
		}
	}
	p.Stop()
	waitDone(t, p)
	// No poll: the end is reported only once nothing of the server is left.
	for _, pid := range pids {
		if exists(pid) {
			t.Errorf("descendant %d outlived its server's stop", pid)
		}
	}
}

// When the server's process exits by itself, the guard ends what it left behind and reports
// its exit status.
func TestGuardChildExitEndsDescendants(t *testing.T) {
	w := testWarden(t)
	f := filepath.Join(t.TempDir(), "pid")
	p := startServer(t, w, `(setsid sh -c 'echo $$ > `+f+`; exec sleep 1000' &); while [ ! -s `+f+` ]; do sleep 0.01; done; exit 3`)
	pid := pidFrom(t, f)
	if err := waitDone(t, p); err == nil || err.Error() != "exit status 3" {
		t.Errorf("server ended with %v, want exit status 3", err)
	}
	if exists(pid) {
		t.Errorf("descendant %d outlived the server's exit", pid)
	}
}

// One guard runs many servers: an orphan that left its server's tree and session still ends
// with its own server (it carries the server's mark), not with another's; the guard exits
// once it runs no server.
func TestGuardTellsServersApart(t *testing.T) {
	w := testWarden(t)
	dir := t.TempDir()
	script := func(f string) string {
		return `(setsid sh -c 'echo $$ > ` + f + `; exec sleep 1000' &); exec sleep 1000`
	}
	a := startServer(t, w, script(filepath.Join(dir, "a")))
	b := startServer(t, w, script(filepath.Join(dir, "b")))
	pa, pb := pidFrom(t, filepath.Join(dir, "a")), pidFrom(t, filepath.Join(dir, "b"))
	guard := wardenPID(t, w)
	poll(t, "both orphans to be the guard's", func() bool {
		oa, okA := procStat(pa)
		ob, okB := procStat(pb)
		return okA && okB && oa.ppid == guard && ob.ppid == guard
	})
	if markOf(pa) == markOf(pb) || markOf(pa) == 0 {
		t.Fatalf("marks %d and %d: want two different servers'", markOf(pa), markOf(pb))
	}
	a.Stop()
	waitDone(t, a)
	if exists(pa) {
		t.Errorf("a's orphan %d outlived a's stop", pa)
	}
	if !exists(pb) {
		t.Fatalf("b's orphan %d ended with a's stop", pb)
	}
	b.Stop()
	waitDone(t, b)
	if exists(pb) {
		t.Errorf("b's orphan %d outlived b's stop", pb)
	}
	poll(t, "the idle guard to exit", func() bool { return !exists(guard) })
}

// An orphan that dropped its server's mark (a new, empty environment) cannot be told apart:
// it is ended with the next server to stop, so never after its own.
func TestGuardEndsUnmarkedOrphans(t *testing.T) {
	w := testWarden(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "bare")
	keep := startServer(t, w, `exec sleep 1000`)
	p := startServer(t, w, `(setsid env -i /bin/sh -c 'echo $$ > `+f+`; exec sleep 1000' &); exec sleep 1000`)
	pid := pidFrom(t, f)
	poll(t, "the orphan to be the guard's", func() bool {
		o, ok := procStat(pid)
		return ok && o.ppid == wardenPID(t, w)
	})
	if m := markOf(pid); m != 0 {
		t.Fatalf("the orphan carries mark %d", m)
	}
	p.Stop()
	waitDone(t, p)
	if exists(pid) {
		t.Errorf("the unmarked orphan %d outlived the stop", pid)
	}
	select {
	case <-keep.Done():
		t.Error("another server's process ended with the stop")
	default:
	}
}

// When the guard is killed, every server it ran ends with ErrGuardLost (their processes
// die with it, by Pdeathsig), and the next start runs a new guard.
func TestGuardLost(t *testing.T) {
	w := testWarden(t)
	p := startServer(t, w, `exec sleep 1000`)
	guard := wardenPID(t, w)
	if err := syscall.Kill(guard, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Started as soon as the guard is dead, before or after the daemon's side has read the
	// end of its socket: either way the start goes to a new guard.
	poll(t, "the guard to die", func() bool { _, ok := procStat(guard); return !ok })
	q := startServer(t, w, `exec sleep 1000`)
	if err := waitDone(t, p); !errors.Is(err, ErrGuardLost) {
		t.Fatalf("server's end %v, want ErrGuardLost", err)
	}
	poll(t, "the server's process to die with the guard", func() bool { return !exists(p.PID) })
	if next := wardenPID(t, w); next == guard {
		t.Errorf("the next start used the killed guard %d", guard)
	}
	q.Stop()
	waitDone(t, q)
}

// A start that cannot be carried out says why and leaves no server behind.
func TestGuardStartFails(t *testing.T) {
	w := testWarden(t)
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	_, err = w.Start("/nonexistent/server", []string{"server"}, nil, "", null, null, null)
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("start of a missing program: %v", err)
	}
}

// descendants, both ways, finds a process by its parent chain alone, whatever its session.
func TestDescendants(t *testing.T) {
	w := testWarden(t)
	f := filepath.Join(t.TempDir(), "pid")
	startServer(t, w, `sh -c 'setsid sh -c "echo \$\$ > `+f+`; exec sleep 1000" & wait'`)
	pid := pidFrom(t, f)
	guard := wardenPID(t, w)
	for name, walk := range map[string]func(int) []procID{"children files": descendants, "scan": scanDescendants} {
		t.Run(name, func(t *testing.T) {
			poll(t, "the grandchild among the guard's descendants", func() bool {
				for _, p := range walk(guard) {
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
