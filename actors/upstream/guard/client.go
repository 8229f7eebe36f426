package guard

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// ErrGuardLost is a Process's error when the warden itself ended before the server did (it
// was killed); the server's process went with it (Pdeathsig).
var ErrGuardLost = errors.New("the guard process exited")

// startBound bounds the wait for the guard's answer to a start: a fork and exec, unless the
// guard is stuck.
const startBound = 10 * time.Second

// Warden is the daemon's side of the warden: it starts the warden process on the first
// Start, sends it each server to start or stop, and closes it once no server is left, so
// that an idle daemon runs no guard. Its zero value is not usable; see NewWarden.
//
// The mutex guards a wire protocol's correlation table (which start waits for which answer,
// which Process an exit report ends), the way an RPC client keeps its calls in flight; the
// servers themselves are the upstream actors' state.
type Warden struct {
	binary string

	mu   sync.Mutex
	cur  *session // the running warden process, nil when none is
	next uint64
}

// NewWarden returns the daemon's side of a warden run by binary (mcpproxy-guard, or a binary
// that calls Become in its init).
func NewWarden(binary string) *Warden { return &Warden{binary: binary, next: 1} }

// session is one warden process and the servers it runs.
type session struct {
	pid  int // the warden's
	conn *net.UnixConn
	live map[uint64]*Process // started or starting, not yet reported exited
}

// Process is one server's process run by the warden.
type Process struct {
	// PID is the server's own process: the leader of its process group.
	PID int

	id      uint64
	w       *Warden
	s       *session
	started chan report // the start's answer
	heard   bool        // the answer has been sent on started
	done    chan struct{}
	status  syscall.WaitStatus
	err     error
}

// Done is closed once the server's process has exited and every process of the server has
// been ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is why the process ended, once Done is closed: nil for exit status 0, else an error
// worded as os/exec's ("exit status 3", "signal: killed"), or ErrGuardLost.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// Stop asks the warden to end the server's processes: SIGTERM to each, SIGKILL after the
// grace. Done is closed when they are gone. Stop does not wait.
func (p *Process) Stop() {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	if p.s.live[p.id] != p {
		return
	}
	data, _ := json.Marshal(request{Op: "stop", ID: p.id})
	_, _ = p.s.conn.Write(data)
}

// Start has the warden start path with args (args[0] the name the child sees), env and the
// working directory dir (empty: the daemon's), with stdin, stdout and stderr as its own. The
// caller keeps its copies of the three files and closes them. A start the guard cannot carry
// out fails with its reason (a fork/exec error); ErrGuardLost when guards die under it twice.
func (w *Warden) Start(path string, args, env []string, dir string, stdin, stdout, stderr *os.File) (*Process, error) {
	rights := syscall.UnixRights(int(stdin.Fd()), int(stdout.Fd()), int(stderr.Fd()))
	// Twice at most: a guard that was killed since its last report fails the write, or
	// takes the request and dies before it answers (its socket outlives its main thread
	// for a moment). Its servers died with it, this one never started, so the start goes
	// to a new guard rather than failing too.
	p, err := w.start(path, args, env, dir, rights)
	if errors.Is(err, errGuardGone) {
		p, err = w.start(path, args, env, dir, rights)
	}
	if errors.Is(err, errGuardGone) {
		err = ErrGuardLost
	}
	return p, err
}

// errGuardGone is a start that the guard did not take because it died.
var errGuardGone = errors.New("the guard died before it answered")

// start is one attempt of Start, with the three descriptors as rights.
func (w *Warden) start(path string, args, env []string, dir string, rights []byte) (*Process, error) {
	w.mu.Lock()
	id := w.next
	w.next++
	data, err := json.Marshal(request{Op: "start", ID: id, Path: path, Args: args, Env: env, Dir: dir})
	if err != nil {
		w.mu.Unlock()
		return nil, err
	}
	s := w.cur
	if s == nil {
		if s, err = w.launch(); err != nil {
			w.mu.Unlock()
			return nil, err
		}
		w.cur = s
	}
	p := &Process{id: id, w: w, s: s, started: make(chan report, 1), done: make(chan struct{})}
	s.live[p.id] = p
	if _, _, err = s.conn.WriteMsgUnix(data, rights, nil); err != nil {
		delete(s.live, p.id)
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			if w.cur == s {
				w.cur = nil
			}
			w.mu.Unlock()
			return nil, errGuardGone
		}
		w.idle(s)
		w.mu.Unlock()
		return nil, fmt.Errorf("the guard: %w", err)
	}
	w.mu.Unlock()
	t := time.NewTimer(startBound)
	defer t.Stop()
	var r report
	var ok bool
	select {
	case r, ok = <-p.started:
	case <-t.C:
		// Should the guard start it after all, the stop that follows the start ends it,
		// and its end is reported as any other's.
		p.Stop()
		return nil, fmt.Errorf("the guard did not answer in %v", startBound)
	}
	if !ok {
		return nil, errGuardGone
	}
	if r.Op != "started" {
		w.mu.Lock()
		delete(s.live, p.id)
		w.idle(s)
		w.mu.Unlock()
		return nil, errors.New(r.Err)
	}
	return p, nil
}

// launch starts a warden process; called with mu held.
func (w *Warden) launch() (*session, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("the guard's socket: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "guard"), os.NewFile(uintptr(fds[1]), "daemon")
	defer theirs.Close()
	c, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		return nil, fmt.Errorf("the guard's socket: %w", err)
	}
	cmd := exec.Command(w.binary)
	cmd.Args[0] = "mcpproxy-guard"
	// GORACE: a binary built with -race (a test binary, as the guard) would otherwise sleep
	// a second at exit, and its idle exit would seem to hang. Other binaries ignore it.
	cmd.Env = []string{Env + "=" + wardenMode, "GORACE=atexit_sleep_ms=0"}
	cmd.ExtraFiles = []*os.File{theirs}
	// Its own process group, away from the terminal's signals; Pdeathsig tells it when the
	// daemon dies, even by kill -9.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	// Pdeathsig fires when the thread that started the child ends, not the process, and
	// the Go runtime ends a thread whose goroutine exits while locked to it. So the guard is
	// started from a goroutine locked to its thread for as long as the guard runs: it
	// serves the guard's reports, and unlocks before it exits.
	started := make(chan error, 1)
	s := &session{conn: c.(*net.UnixConn), live: map[uint64]*Process{}}
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		s.pid = cmd.Process.Pid
		started <- nil
		w.serve(s, cmd)
	}()
	if err := <-started; err != nil {
		c.Close()
		return nil, fmt.Errorf("start the guard %s: %w", w.binary, err)
	}
	return s, nil
}

// serve reads s's reports until the warden's socket ends, then reaps the warden.
func (w *Warden) serve(s *session, cmd *exec.Cmd) {
	buf := make([]byte, 64<<10)
	for {
		n, err := s.conn.Read(buf)
		if err != nil || n == 0 {
			break
		}
		var r report
		if json.Unmarshal(buf[:n], &r) != nil {
			continue
		}
		w.mu.Lock()
		switch p := s.live[r.ID]; {
		case p == nil:
		case r.Op == "exited":
			delete(s.live, r.ID)
			p.status = syscall.WaitStatus(r.Status)
			p.err = statusErr(p.status)
			close(p.done)
			w.idle(s)
		case !p.heard:
			p.heard = true
			p.PID = r.PID
			p.started <- r // buffered: never blocks
		}
		w.mu.Unlock()
	}
	s.conn.Close()
	w.mu.Lock()
	if w.cur == s {
		w.cur = nil
	}
	for id, p := range s.live {
		delete(s.live, id)
		if !p.heard {
			close(p.started)
		}
		p.err = ErrGuardLost
		close(p.done)
	}
	w.mu.Unlock()
	_ = cmd.Wait()
}

// idle closes s once it runs no server, so the warden exits; called with mu held. The next
// Start launches another.
func (w *Warden) idle(s *session) {
	if len(s.live) > 0 {
		return
	}
	if w.cur == s {
		w.cur = nil
	}
	// The warden reads the end of the stream and exits; serve then reaps it.
	_ = s.conn.CloseWrite()
}

// statusErr words a process's end as os/exec does.
func statusErr(ws syscall.WaitStatus) error {
	switch {
	case ws.Signaled():
		return fmt.Errorf("signal: %v", ws.Signal())
	case ws.ExitStatus() != 0:
		return fmt.Errorf("exit status %d", ws.ExitStatus())
	}
	return nil
}
