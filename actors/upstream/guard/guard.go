// Package guard is the process that runs the daemon's stdio upstreams (the warden, warden.go)
// and the daemon's side of it (client.go). One guard serves every stdio upstream of a daemon:
// the daemon hands it each server's command and pipes, and it starts, watches and ends them.
// It imports almost nothing, so that it can be built as its own small program
// (cmd/mcpproxy-guard); the daemon's binary runs it too (actors/upstream's init) where the
// small one is not installed.
package guard

import (
	"errors"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Env turns a binary that can run the guard (mcpproxy-guard, the daemon, or a test binary)
// into the guard: Become checks it first thing. Its value is the protocol the guard speaks
// on file descriptor 3 (wardenMode); it is not passed on to the servers.
const Env = "MCPPROXY_CHILD_GUARD"

// MarkEnv is set in every stdio server's environment to the number the guard gave it, so
// that a process which has left its server's process tree (its parent exited, and it may
// have called setsid) is still known as that server's when it is reparented to the guard.
const MarkEnv = "MCPPROXY_UPSTREAM_ID"

// Bounds of ending a server's processes (ending.step, endDescendants). Together they stay
// under the 700 ms the daemon waits after asking for a stop before it kills the server's
// group itself (actors/upstream killGroup), so that the group kill, which cannot reach
// descendants that left the group, is only a fallback.
const (
	// guardGrace is how long descendants have between SIGTERM and SIGKILL.
	guardGrace = 300 * time.Millisecond
	// guardKillBound is how long, after the grace, the guard keeps killing what it finds
	// (processes forking while being killed) before it gives up and reports the end.
	guardKillBound = 300 * time.Millisecond
)

// dieOf ends the guard by sig, as it was told to; the status is what is left should the
// signal not kill it.
func dieOf(sig syscall.Signal) int {
	signal.Reset(sig)
	_ = syscall.Kill(os.Getpid(), sig)
	return 128 + int(sig)
}

// reapAll reaps every child that has ended without blocking, telling reaped of each (nil:
// nobody); none is true when the guard has no children left at all.
func reapAll(reaped func(pid int, st syscall.WaitStatus)) (none bool) {
	for {
		var st syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &st, syscall.WNOHANG, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil: // ECHILD
			return true
		case pid <= 0:
			return false
		case reaped != nil:
			reaped(pid, st)
		}
	}
}

// endDescendants ends every process below the guard: SIGTERM to each as it is found, SIGKILL
// to whatever is still there after guardGrace, reaping as they go, until the guard has no
// child left (as subreaper, a descendant whose parent dies becomes its child, so no child
// means no descendant) or guardKillBound has passed after the grace. chld is the guard's
// SIGCHLD notifications, to wait on between rounds.
func endDescendants(chld <-chan os.Signal) {
	self := os.Getpid()
	start := time.Now()
	termed := map[[2]uint64]bool{} // pid and start time of those sent SIGTERM
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if reapAll(nil) {
			return
		}
		kill := time.Since(start) >= guardGrace
		for _, p := range descendants(self) {
			switch {
			case kill:
				p.signal(self, syscall.SIGKILL)
			case !termed[[2]uint64{uint64(p.pid), p.start}]:
				termed[[2]uint64{uint64(p.pid), p.start}] = true
				p.signal(self, syscall.SIGTERM)
			}
		}
		if time.Since(start) >= guardGrace+guardKillBound {
			return
		}
		select {
		case <-chld:
		case <-tick.C:
		}
	}
}

// procID names one process for its lifetime: a pid may be reused, a pid with its start time
// may not.
type procID struct {
	pid, ppid int
	start     uint64
}

// procStat reads pid's parent and start time from /proc/<pid>/stat; ok is false when the
// process is gone or a zombie (nothing left to signal).
func procStat(pid int) (p procID, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return p, false
	}
	// The command name is parenthesised and may hold anything; the fields after it are
	// state (3), ppid (4), ... starttime (22).
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return p, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return p, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil {
		return p, false
	}
	return procID{pid: pid, ppid: ppid, start: start}, true
}

// descendants lists the live processes whose parent chain leads to root. It walks down
// from root through /proc/<pid>/task/<tid>/children, which costs in proportion to the
// descendants, not to every process on the machine; a kernel without those files gets the
// full scan of /proc. Either may miss a process forked or reparented while it reads:
// endDescendants walks again until the guard has no child left.
func descendants(root int) []procID {
	if _, err := os.Stat("/proc/thread-self/children"); err != nil {
		return scanDescendants(root)
	}
	var out []procID
	queue := []int{root}
	for len(queue) > 0 {
		for _, pid := range childrenOf(queue[0]) {
			if p, ok := procStat(pid); ok {
				out = append(out, p)
				queue = append(queue, pid)
			}
		}
		queue = queue[1:]
	}
	return out
}

// childrenOf lists the children of every thread of pid (a child belongs to the thread that
// forked it, an adopted orphan to some thread of its reaper).
func childrenOf(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []int
	for _, task := range tasks {
		data, err := os.ReadFile(dir + task.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// scanDescendants is descendants from the parent of every process in /proc.
func scanDescendants(root int) []procID {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]procID{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := procStat(pid); ok {
			children[p.ppid] = append(children[p.ppid], p)
		}
	}
	var out []procID
	queue := []int{root}
	for len(queue) > 0 {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
		queue = queue[1:]
	}
	return out
}

// signal sends sig to p unless p's pid now names another process. A child of the guard
// (self) cannot change identity before the guard reaps it; a deeper descendant is pinned
// with a pidfd and checked against its start time before the signal goes through the pidfd.
func (p procID) signal(self int, sig syscall.Signal) {
	if p.ppid == self {
		_ = syscall.Kill(p.pid, sig)
		return
	}
	fd, err := unix.PidfdOpen(p.pid, 0)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			// A kernel without pidfds (before 5.3): the start time check narrows the race.
			if now, ok := procStat(p.pid); ok && now.start == p.start {
				_ = syscall.Kill(p.pid, sig)
			}
		}
		return
	}
	defer unix.Close(fd)
	if now, ok := procStat(p.pid); ok && now.start == p.start {
		_ = unix.PidfdSendSignal(fd, sig, nil, 0)
	}
}
