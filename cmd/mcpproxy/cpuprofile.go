package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// cpuProfileEnv names the file a daemon writes a CPU profile of its whole run to, from
// before it starts until its shutdown has finished. Like MCPPROXY_HEAP_PROFILE it is opt-in
// and local (the environment of the daemon's own user), with no route. It is how the CPU
// figures of the README (B6's start and restart against the floor, B1's call path) are
// explained: `go tool pprof -top bin/mcpproxy <file>`.
const cpuProfileEnv = "MCPPROXY_CPU_PROFILE"

// startCPUProfile starts the profile named by MCPPROXY_CPU_PROFILE and returns the function
// that ends it and closes the file; without the variable it does nothing. A file that cannot
// be created is an error: a profile asked for and silently not written would waste the run.
func startCPUProfile() (stop func(), err error) {
	path := os.Getenv(cpuProfileEnv)
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cpuProfileEnv, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", cpuProfileEnv, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
