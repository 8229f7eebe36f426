// Package guard is the process that runs one stdio upstream for the daemon (see Run). It
// imports almost nothing, so that it can be built as its own small program
// (cmd/mcpproxy-guard), which starts in a fraction of the time the daemon's binary takes to
// load and initialise its packages; the daemon's binary runs it too (actors/upstream's init)
// where the small one is not installed.
package guard

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Env carries the command a guard process runs (a Spec in JSON). Its presence turns a
// binary that runs guards (mcpproxy-guard, the daemon, or a test binary) into the guard.
const Env = "MCPPROXY_CHILD_GUARD"

// Bounds of a guard's stop (endDescendants). Together they stay under the 700 ms the daemon
// waits after its SIGTERM before it kills the guard's group (killGroup), so the guard is not
// killed in the middle of ending descendants that the group kill cannot reach.
const (
	// guardGrace is how long descendants have between SIGTERM and SIGKILL.
	guardGrace = 300 * time.Millisecond
	// guardKillBound is how long, after the grace, the guard keeps killing what it finds
	// (processes forking while being killed) before it gives up and exits.
	guardKillBound = 300 * time.Millisecond
)

// Spec is what the daemon tells a guard to run. It travels in the environment, not in
// argv, so the guard's command line stays free of the upstream's arguments.
type Spec struct {
	Path string   `json:"path"`
	Args []string `json:"args"` // Args[0] is the name the child sees
	// Parent is the daemon's pid: a guard whose parent is already another process was
	// orphaned before it could hear of it.
	Parent int `json:"parent"`
}

// A stdio upstream does not run as the daemon's direct child: a small guard process runs
// it. Pdeathsig reaches only a direct child, so after kill -9 of the
// daemon the grandchildren of wrappers such as npx, uvx or a shell script would live on; the
// guard gets SIGTERM from Pdeathsig instead and ends them.
//
// Process groups are not enough to find them: a descendant may call setsid (a new session and
// group) and its parent may exit, orphaning it. So the guard is a child subreaper
// (PR_SET_CHILD_SUBREAPER): every orphan below it is reparented to it rather than to init,
// and its descendants are exactly the processes whose parent chain in /proc leads to it,
// whatever their group or session. It reaps those orphans while it runs, and it never exits
// before it has ended every descendant (endDescendants): when the server's process exits,
// and when it is told to stop, by the daemon's Close (SIGTERM to the guard) or by Pdeathsig.
//
// Run is the guard's main, with raw the Spec from Env: it starts the child with the guard's
// stdin, stdout and stderr, reaps it and every orphan reparented to the guard, and passes the
// child's exit status on once no descendant is left. On SIGTERM, SIGINT or SIGHUP (the daemon
// died or is stopping the server) it ends every descendant and dies of the same signal.
func Run(raw string) int {
	var spec Spec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil || spec.Path == "" || len(spec.Args) == 0 {
		fmt.Fprintln(os.Stderr, "mcpproxy guard: bad spec")
		return 127
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	// The daemon may have died before the signal handler was installed.
	if ppid := os.Getppid(); ppid == 1 || (spec.Parent != 0 && ppid != spec.Parent) {
		return 1
	}
	// Before the child starts, so that nothing it starts can be orphaned past the guard.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "mcpproxy guard: cannot become a child subreaper:", err)
		return 127
	}
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, Env+"=") {
			env = append(env, kv)
		}
	}
	// syscall.ForkExec rather than os/exec: the guard reaps with wait4(-1), which would race
	// with exec.Cmd.Wait for the child's status. The working dir is the guard's own.
	child, err := syscall.ForkExec(spec.Path, spec.Args, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{0, 1, 2},
		// If the guard itself is killed with SIGKILL, its child goes too.
		Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "fork/exec %s: %v\n", spec.Path, err)
		return 127
	}
	for {
		select {
		case <-chld:
			ws, exited, _ := reapChildren(child)
			if !exited {
				continue
			}
			endDescendants(chld)
			if ws.Signaled() {
				// A child killed by a signal: die of the same signal, so the daemon's error
				// says "signal: killed" rather than a made-up exit status.
				return dieOf(ws.Signal())
			}
			return ws.ExitStatus()
		case sig := <-sigs:
			endDescendants(chld)
			return dieOf(sig.(syscall.Signal))
		}
	}
}

// dieOf ends the guard by sig, as its child ended or as it was told to; the status is what
// is left should the signal not kill it.
func dieOf(sig syscall.Signal) int {
	signal.Reset(sig)
	_ = syscall.Kill(os.Getpid(), sig)
	return 128 + int(sig)
}

// reapChildren reaps every child that has ended (the server's process and any orphan
// reparented to the guard) without blocking. It returns child's status when child was among
// them, and none=true when the guard has no children left at all.
func reapChildren(child int) (ws syscall.WaitStatus, exited, none bool) {
	for {
		var st syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &st, syscall.WNOHANG, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil: // ECHILD
			return ws, exited, true
		case pid <= 0:
			return ws, exited, false
		case pid == child:
			ws, exited = st, true
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
		if _, _, none := reapChildren(0); none {
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

// Become makes the process the guard when Env is set: it runs Run and exits with its status.
// Without Env it returns, and the process goes on as itself.
func Become() {
	if spec, ok := os.LookupEnv(Env); ok {
		os.Exit(Run(spec))
	}
}

// Command wraps path and args (args[0] the child's name) in a guard run by the binary self:
// the returned command is self, with the spec in env.
func Command(self, path string, args []string, env []string) (string, []string, []string) {
	spec, _ := json.Marshal(Spec{Path: path, Args: args, Parent: os.Getpid()})
	return self, []string{"mcpproxy-guard"}, append(env, Env+"="+string(spec))
}
