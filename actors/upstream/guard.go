package upstream

import (
	"os"
	"path/filepath"
	"sync"

	"github.com/mcpproxy/mcpproxy/actors/upstream/guard"
)

// Every stdio upstream runs under the guard process (package guard), one for all of them. A
// binary that links this package becomes the guard when guard.Env is set, in init: the
// daemon runs itself as the guard where the small mcpproxy-guard is not installed next to
// it, and tests run their own binary.
func init() { guard.Become() }

// GuardName is the file name of the small guard program (cmd/mcpproxy-guard), looked for
// next to the daemon's executable.
const GuardName = "mcpproxy-guard"

// guardBinary is the program that runs the guard: mcpproxy-guard beside the executable when
// it is there (a regular, executable file), else this binary itself. The small one starts in
// a fraction of the time and memory: this binary loads tens of megabytes and initialises
// every package it links before its init can turn into the guard. It is looked up once per
// process.
var guardBinary = sync.OnceValue(func() string {
	if exe, err := os.Executable(); err == nil {
		small := filepath.Join(filepath.Dir(exe), GuardName)
		if fi, err := os.Stat(small); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return small
		}
	}
	return "/proc/self/exe"
})

// warden is this process's guard, started on the first stdio server and stopped whenever
// none is left.
var warden = sync.OnceValue(func() *guard.Warden { return guard.NewWarden(guardBinary()) })
