package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
)

// cpuProfileEnv names the file a daemon writes a CPU profile of its whole run to, from
// before it starts until its shutdown has finished. Like MCPPROXY_HEAP_PROFILE it is opt-in
// and local (the environment of the daemon's own user), with no route. It is how the CPU
// figures of the README (B6's start and restart against the floor, B1's call path) are
// explained: `go tool pprof -top bin/mcpproxy <file>`.
const cpuProfileEnv = "MCPPROXY_CPU_PROFILE"

// traceEnv names the file a daemon writes an execution trace of its whole run to, opt-in
// like the CPU profile. A call's added latency is mostly waiting (a goroutine handing the
// call to the next one, a process woken), which a CPU profile does not show and the trace
// does: `go tool trace <file>`.
const traceEnv = "MCPPROXY_TRACE"

// startCPUProfile starts the profile named by MCPPROXY_CPU_PROFILE and the trace named by
// MCPPROXY_TRACE and returns the function that ends them and closes the files; without the
// variables it does nothing. A file that cannot
// be created is an error: a profile asked for and silently not written would waste the run.
func startCPUProfile() (stop func(), err error) {
	stopTrace, err := startRecording(traceEnv, trace.Start, trace.Stop)
	if err != nil {
		return nil, err
	}
	stopCPU, err := startRecording(cpuProfileEnv, pprof.StartCPUProfile, pprof.StopCPUProfile)
	if err != nil {
		stopTrace()
		return nil, err
	}
	return func() { stopCPU(); stopTrace() }, nil
}

// startRecording starts a recording of the run (start, ended by end) into the file named by
// the variable env, if set, and returns the function that ends it and closes the file.
func startRecording(env string, start func(io.Writer) error, end func()) (stop func(), err error) {
	path := os.Getenv(env)
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", env, err)
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", env, err)
	}
	return func() {
		end()
		f.Close()
	}, nil
}
