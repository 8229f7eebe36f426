package test

// End-to-end tests of the guard that runs each stdio upstream (actors/upstream/guard):
// a descendant that leaves the process group and the session with setsid, and is orphaned
// on top, must still end with its server: when the daemon is killed with SIGKILL, when the
// server is disabled, when it is restarted, and when the daemon shuts down.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/actors"
)

// escapingServer is a stdio server entry whose shell starts, through a subshell that exits
// at once, a `setsid` sleeper that writes its pid to pidFile: a descendant in its own session
// and process group, reparented away from the shell. The shell then becomes the fixture.
func escapingServer(t *testing.T, name, pidFile string) map[string]any {
	script := fmt.Sprintf(`(setsid sh -c 'echo $$ > %s; exec sleep 1000' &); exec %s --name %s`,
		pidFile, fixtureBin(t), name)
	return map[string]any{"name": name, "command": "/bin/sh", "args": []string{"-c", script}, "quarantined": false}
}

// escapedPID waits until the sleeper has written a pid other than old to pidFile, checks that
// it really left the process group and session of the server, and makes sure a failing test
// does not leave it behind: owner (the test that outlives it) kills it at cleanup.
func escapedPID(t *testing.T, owner testing.TB, pidFile string, old int) int {
	t.Helper()
	pid := 0
	waitFor(t, 20*time.Second, "the setsid descendant to write its pid", func() bool {
		data, err := os.ReadFile(pidFile)
		if err != nil || !strings.HasSuffix(string(data), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(data)))
		return err == nil && pid != old && processAlive(pid)
	})
	owner.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	pgid, err := syscall.Getpgid(pid)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := getsid(pid)
	if err != nil {
		t.Fatal(err)
	}
	if pgid != pid || sid != pid {
		t.Fatalf("descendant %d has group %d and session %d: setsid did not take", pid, pgid, sid)
	}
	return pid
}

// getsid is the session of pid, from /proc (syscall has no Getsid on linux).
func getsid(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// After the command: state, ppid, pgrp, session.
	return strconv.Atoi(f[3])
}

// ppid is the parent of pid, from /proc.
func ppid(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(data)
	return strconv.Atoi(strings.Fields(s[strings.LastIndexByte(s, ')')+2:])[1])
}

func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	waitFor(t, 10*time.Second, what, func() bool { return !processAlive(pid) })
}

// TestSetsidDescendantDiesWithKilledDaemon kills the daemon (the built binary) with SIGKILL:
// the guard hears of it through Pdeathsig and must end the escaped descendant too.
func TestSetsidDescendantDiesWithKilledDaemon(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "escaped.pid")
	p := startProxyProcess(t, t.TempDir(), servers(escapingServer(t, "esc", pidFile)))
	p.waitState("esc", 30*time.Second, actors.StateReady)
	pid := escapedPID(t, t, pidFile, 0)
	// The orphan is the guard's now (a subreaper), and the guard is the small program that
	// `make build` puts next to the daemon, not the daemon's own binary.
	guard, err := ppid(pid)
	if err != nil {
		t.Fatal(err)
	}
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", guard)); err != nil || exe != filepath.Join(binaries(t), "mcpproxy-guard") {
		t.Errorf("the orphan's parent %d runs %q (%v), want the mcpproxy-guard beside the daemon", guard, exe, err)
	}
	if err := p.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.Cmd.Wait()
	waitGone(t, pid, "the setsid descendant to die with the daemon")
}

// TestSetsidDescendantEndsWithServer stops the server in the ordinary ways: disable,
// restart (the old descendant goes, the new process starts a new one), and shutdown.
func TestSetsidDescendantEndsWithServer(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "escaped.pid")
	p := startProxy(t, servers(escapingServer(t, "esc", pidFile)))
	p.waitState("esc", 30*time.Second, actors.StateReady)
	parent := t

	t.Run("restart", func(t *testing.T) {
		old := escapedPID(t, parent, pidFile, 0)
		if code, body := p.do("POST", "/api/v1/servers/esc/restart", nil, nil); code != 200 {
			t.Fatalf("restart: %d %s", code, body)
		}
		waitGone(t, old, "the old setsid descendant to end with the restart")
		escapedPID(t, parent, pidFile, old)
		p.waitState("esc", 30*time.Second, actors.StateReady)
	})
	t.Run("disable", func(t *testing.T) {
		pid := escapedPID(t, parent, pidFile, 0)
		if code, body := p.do("POST", "/api/v1/servers/esc/disable", nil, nil); code != 200 {
			t.Fatalf("disable: %d %s", code, body)
		}
		p.waitState("esc", 10*time.Second, actors.StateDisabled)
		waitGone(t, pid, "the setsid descendant to end with the disable")
	})
	t.Run("shutdown", func(t *testing.T) {
		if code, body := p.do("POST", "/api/v1/servers/esc/enable", nil, nil); code != 200 {
			t.Fatalf("enable: %d %s", code, body)
		}
		p.waitState("esc", 30*time.Second, actors.StateReady)
		pid := escapedPID(t, parent, pidFile, 0)
		p.Stop()
		if !processAlive(pid) {
			return
		}
		t.Errorf("the setsid descendant %d outlived the daemon's shutdown", pid)
	})
}
