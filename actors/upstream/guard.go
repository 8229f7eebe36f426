package upstream

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
)

// guardEnv carries the command a guard process runs. Its presence turns any binary that
// links this package (the daemon, or a test binary) into the guard, in init, before main.
const guardEnv = "MCPPROXY_CHILD_GUARD"

// guardSpec is what the daemon tells a guard to run. It travels in the environment, not in
// argv, so the guard's command line stays free of the upstream's arguments.
type guardSpec struct {
	Path string   `json:"path"`
	Args []string `json:"args"` // Args[0] is the name the child sees
}

// A stdio upstream does not run as the daemon's direct child: a small guard process (this
// binary again) runs it. Pdeathsig reaches only a direct child, so after kill -9 of the
// daemon the grandchildren of wrappers such as npx, uvx or a shell script would live on; the
// guard gets SIGTERM from Pdeathsig instead, and kills the whole process group it leads.
func init() {
	spec, ok := os.LookupEnv(guardEnv)
	if !ok {
		return
	}
	os.Exit(runGuard(spec))
}

// guardCommand wraps path and args (args[0] the child's name) in a guard: the returned
// command is this binary, with the spec in env.
func guardCommand(path string, args []string, env []string) (string, []string, []string) {
	spec, _ := json.Marshal(guardSpec{Path: path, Args: args})
	return "/proc/self/exe", []string{"mcpproxy-guard"}, append(env, guardEnv+"="+string(spec))
}

// runGuard starts the child with the guard's stdin, stdout and stderr, waits for it, and
// passes its exit status on. On SIGTERM, SIGINT or SIGHUP (the daemon died or is stopping
// the server) it kills its process group, children and grandchildren alike.
func runGuard(raw string) int {
	var spec guardSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil || spec.Path == "" || len(spec.Args) == 0 {
		fmt.Fprintln(os.Stderr, "mcpproxy guard: bad spec")
		return 127
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	// The daemon may have died before the signal handler was installed.
	if os.Getppid() == 1 {
		return 1
	}
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, guardEnv+"=") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(spec.Path, spec.Args[1:]...)
	cmd.Args[0] = spec.Args[0]
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// If the guard itself is killed with SIGKILL, its child goes too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 127
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			// A child killed by a signal: die of the same signal, so the daemon's error
			// says "signal: killed" rather than a made-up exit status.
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				signal.Reset(ws.Signal())
				_ = syscall.Kill(os.Getpid(), ws.Signal())
				return 128 + int(ws.Signal())
			}
			return ee.ExitCode()
		}
		if err != nil {
			return 1
		}
		return 0
	case <-sigs:
		// The group is ours (the daemon started us with Setpgid); this ends us too.
		_ = syscall.Kill(-os.Getpid(), syscall.SIGKILL)
		return 1
	}
}
