package guard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// One guard, the warden, runs every stdio upstream of a daemon. It used to be one guard
// process per upstream; but a Go program costs several milliseconds of CPU to start (more
// here, in a VM), and a hundred of them started at once cost the daemon a third more than
// the servers themselves take to start.
//
// Pdeathsig reaches only a direct child, so after kill -9 of the daemon the grandchildren of
// wrappers such as npx, uvx or a shell script would live on; the warden is the daemon's
// child, gets SIGTERM from Pdeathsig instead, and ends every process below it.
//
// Process groups are not enough to find a server's processes: a descendant may call setsid
// (a new session and group) and its parent may exit, orphaning it. So the warden is a child
// subreaper (PR_SET_CHILD_SUBREAPER): every orphan below it is reparented to it rather than
// to init, and the processes below it are exactly those whose parent chain in /proc leads to
// it, whatever their group or session. Which server such an orphan belongs to is read from
// MarkEnv in its environment (/proc/<pid>/environ), which every server's process hands down
// to what it starts unless it builds a new environment. An orphan whose mark cannot be read
// (it dropped it, or its environ is not readable) is ended with the next server that stops
// or exits: it may be that server's, and it cannot be kept past its own server's end.
//
// A server's processes (its process, what runs below it, and the orphans marked with it) are
// ended (ending) when the daemon asks for the server's stop and when the server's process
// exits by itself: SIGTERM to each as it is found, SIGKILL after guardGrace, until none is
// left or guardKillBound has passed after the grace. Only then does the warden report the
// exit to the daemon, so no process of a stopped server outlives the report.

// wardenMode is Env's value for the warden.
const wardenMode = "warden"

// wardenFD is the warden's end of the daemon's socket (the first of exec.Cmd.ExtraFiles).
const wardenFD = 3

// maxMessage bounds one request from the daemon: a command, its arguments and environment.
const maxMessage = 1 << 20

// request is one message from the daemon. A "start" carries the server's stdin, stdout and
// stderr as SCM_RIGHTS; a "stop" asks for the server's processes to be ended.
type request struct {
	Op   string   `json:"op"` // "start" or "stop"
	ID   uint64   `json:"id"`
	Path string   `json:"path,omitempty"`
	Args []string `json:"args,omitempty"` // Args[0] is the name the child sees
	Env  []string `json:"env,omitempty"`
	Dir  string   `json:"dir,omitempty"`
}

// report is one message to the daemon: a start's outcome, or a server's end.
type report struct {
	Op     string `json:"op"` // "started", "failed" or "exited"
	ID     uint64 `json:"id"`
	PID    int    `json:"pid,omitempty"`
	Err    string `json:"err,omitempty"`
	Status uint32 `json:"status,omitempty"` // the server's process's syscall.WaitStatus
}

// incoming is a request as read, with the descriptors that came with it.
type incoming struct {
	req   request
	files []int
}

// server is one upstream the warden runs.
type server struct {
	id     uint64
	pid    int
	reaped bool
	status syscall.WaitStatus
	ending *ending // nil while the server runs undisturbed
}

// ending is a server's processes being ended: since start, and which have had SIGTERM.
type ending struct {
	start  time.Time
	termed map[[2]uint64]bool // pid and start time
}

// warden is the guard's state, owned by runWarden's loop.
type warden struct {
	self    int
	conn    *net.UnixConn
	servers map[uint64]*server
	byPID   map[int]*server // the server processes not yet reaped
}

// Become makes the process the guard when Env is set: it runs the warden and exits with its
// status. Without Env it returns, and the process goes on as itself.
func Become() {
	mode, ok := os.LookupEnv(Env)
	if !ok {
		return
	}
	if mode != wardenMode {
		fmt.Fprintln(os.Stderr, "mcpproxy guard: unknown mode", strconv.Quote(mode))
		os.Exit(127)
	}
	os.Exit(runWarden())
}

// runWarden is the warden's main: it serves the daemon's socket on wardenFD until the daemon
// closes it or dies, then ends every process below it.
func runWarden() int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	// The daemon may have died before the signal handler was installed.
	if os.Getppid() == 1 {
		return 1
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "mcpproxy guard: cannot become a child subreaper:", err)
		return 127
	}
	// The socket must not leak into the servers; FileConn takes a copy of it.
	f := os.NewFile(wardenFD, "daemon")
	c, err := net.FileConn(f)
	f.Close()
	conn, ok := c.(*net.UnixConn)
	if err != nil || !ok {
		fmt.Fprintln(os.Stderr, "mcpproxy guard: no socket from the daemon on fd 3")
		return 127
	}
	w := &warden{self: os.Getpid(), conn: conn, servers: map[uint64]*server{}, byPID: map[int]*server{}}
	reqs := make(chan incoming)
	go readRequests(conn, reqs)
	tick := time.NewTicker(10 * time.Millisecond)
	tick.Stop()
	ticking := false
	for {
		select {
		case in, ok := <-reqs:
			if !ok { // the daemon closed the socket or died
				endDescendants(chld)
				return 0
			}
			w.handle(in)
		case <-chld:
			w.reap()
		case <-tick.C:
		case sig := <-sigs:
			endDescendants(chld)
			return dieOf(sig.(syscall.Signal))
		}
		w.step()
		switch busy := w.busy(); {
		case busy && !ticking:
			tick.Reset(10 * time.Millisecond)
			ticking = true
		case !busy && ticking:
			tick.Stop()
			ticking = false
		}
	}
}

// readRequests reads the daemon's messages into reqs, closing it when the socket ends.
func readRequests(conn *net.UnixConn, reqs chan<- incoming) {
	defer close(reqs)
	buf := make([]byte, maxMessage)
	oob := make([]byte, syscall.CmsgSpace(3*4))
	for {
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			return
		}
		var in incoming
		if msgs, err := syscall.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if fds, err := syscall.ParseUnixRights(&m); err == nil {
					in.files = append(in.files, fds...)
				}
			}
		}
		if err := json.Unmarshal(buf[:n], &in.req); err != nil {
			in.req = request{Op: "bad"}
		}
		reqs <- in
	}
}

func (w *warden) send(r report) {
	data, _ := json.Marshal(r)
	_, _ = w.conn.Write(data)
}

// handle carries out one request.
func (w *warden) handle(in incoming) {
	defer func() {
		for _, fd := range in.files {
			_ = syscall.Close(fd)
		}
	}()
	switch in.req.Op {
	case "start":
		w.start(in.req, in.files)
	case "stop":
		if s := w.servers[in.req.ID]; s != nil && s.ending == nil {
			s.ending = &ending{start: time.Now(), termed: map[[2]uint64]bool{}}
		}
	}
}

// start starts a server's process with the three descriptors that came with the request as
// its stdin, stdout and stderr, in its own process group.
func (w *warden) start(req request, files []int) {
	if len(files) != 3 || req.Path == "" || len(req.Args) == 0 || w.servers[req.ID] != nil {
		w.send(report{Op: "failed", ID: req.ID, Err: "mcpproxy guard: bad start request"})
		return
	}
	// The mark is the guard's to set: one from the server's config would hide it.
	env := make([]string, 0, len(req.Env)+1)
	for _, kv := range req.Env {
		if !strings.HasPrefix(kv, MarkEnv+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, MarkEnv+"="+strconv.FormatUint(req.ID, 10))
	// syscall.ForkExec rather than os/exec: the warden reaps with wait4(-1), which would
	// race with exec.Cmd.Wait for the child's status.
	pid, err := syscall.ForkExec(req.Path, req.Args, &syscall.ProcAttr{
		Dir:   req.Dir,
		Env:   env,
		Files: []uintptr{uintptr(files[0]), uintptr(files[1]), uintptr(files[2])},
		// Its own group, for the daemon's fallback kill; if the warden itself is killed
		// with SIGKILL, the server's process goes too.
		Sys: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		w.send(report{Op: "failed", ID: req.ID, Err: fmt.Sprintf("fork/exec %s: %v", req.Path, err)})
		return
	}
	s := &server{id: req.ID, pid: pid}
	w.servers[req.ID] = s
	w.byPID[pid] = s
	w.send(report{Op: "started", ID: req.ID, PID: pid})
}

// reap reaps every child that has ended: a server's process, whose processes are then ended,
// or an orphan.
func (w *warden) reap() {
	reapAll(func(pid int, st syscall.WaitStatus) {
		s := w.byPID[pid]
		if s == nil {
			return
		}
		delete(w.byPID, pid)
		s.reaped, s.status = true, st
		if s.ending == nil {
			s.ending = &ending{start: time.Now(), termed: map[[2]uint64]bool{}}
		}
	})
}

// busy reports whether some server's processes are being ended.
func (w *warden) busy() bool {
	for _, s := range w.servers {
		if s.ending != nil {
			return true
		}
	}
	return false
}

// step moves every ending on: it signals what is left of each, and reports the servers with
// nothing left.
func (w *warden) step() {
	// Reap first: an orphan that has just died is a zombie until then, and a server is
	// reported ended only once nothing of it is left, not even that.
	w.reap()
	var orphans []procID
	var marks []uint64
	first := true
	for id, s := range w.servers {
		e := s.ending
		if e == nil {
			continue
		}
		if first {
			orphans, marks = w.orphans()
			first = false
		}
		left := w.processesOf(s, orphans, marks)
		elapsed := time.Since(e.start)
		if s.reaped && (len(left) == 0 || elapsed >= guardGrace+guardKillBound) {
			delete(w.servers, id)
			w.send(report{Op: "exited", ID: id, Status: uint32(s.status)})
			continue
		}
		for _, p := range left {
			key := [2]uint64{uint64(p.pid), p.start}
			switch {
			case elapsed >= guardGrace:
				p.signal(w.self, syscall.SIGKILL)
			case !e.termed[key]:
				e.termed[key] = true
				p.signal(w.self, syscall.SIGTERM)
			}
		}
	}
}

// orphans lists the warden's children that are no server's own process (orphans reparented
// to it), each with the mark in its environment (0 when it has none that can be read).
// Signalling one that has become a zombie is harmless: its pid is not reused before the
// warden reaps it.
func (w *warden) orphans() ([]procID, []uint64) {
	var out []procID
	var marks []uint64
	for _, pid := range childrenOf(w.self) {
		if w.byPID[pid] != nil {
			continue
		}
		if p, ok := procStat(pid); ok {
			out = append(out, p)
			marks = append(marks, markOf(pid))
		} else if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			// Died since the last reap: a zombie, unmarked, holds up every ending until
			// the next reap, so that no server is reported gone while it is there.
			out = append(out, procID{pid: pid, ppid: w.self})
			marks = append(marks, 0)
		}
	}
	return out, marks
}

// processesOf lists the live processes of s: its own process and what runs below it, and
// the orphans (with what runs below them) marked as s's, as a server's that has already
// been reported, or not marked at all.
func (w *warden) processesOf(s *server, orphans []procID, marks []uint64) []procID {
	var out []procID
	if !s.reaped {
		if p, ok := procStat(s.pid); ok {
			out = append(out, p)
		}
		out = append(out, descendants(s.pid)...)
	}
	for i, o := range orphans {
		if m := marks[i]; m == s.id || m == 0 || w.servers[m] == nil {
			out = append(out, o)
			out = append(out, descendants(o.pid)...)
		}
	}
	return out
}

// maxEnviron bounds the read of an orphan's environment: a process may make its own as large
// as its stack allows. A mark past the bound is not seen, and the orphan is taken for
// unmarked.
const maxEnviron = 256 << 10

// markOf reads MarkEnv from pid's environment; 0 when it is not there or not readable.
func markOf(pid int) uint64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return 0
	}
	data, err := io.ReadAll(io.LimitReader(f, maxEnviron))
	f.Close()
	if err != nil {
		return 0
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(MarkEnv+"=")); ok {
			if n, err := strconv.ParseUint(string(v), 10, 64); err == nil {
				return n
			}
		}
	}
	return 0
}
