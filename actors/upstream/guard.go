package upstream

import (
	"os"
	"path/filepath"
	"sync"

	"github.com/mcpproxy/mcpproxy/actors/upstream/guard"
)

// Every stdio upstream runs under a guard process (package guard). A binary that links this
// package becomes the guard when guard.Env is set, in init: the daemon runs itself as the
// guard where the small mcpproxy-guard is not installed next to it, and tests run their own
// binary.
func init() { guard.Become() }

// GuardName is the file name of the small guard program (cmd/mcpproxy-guard), looked for
// next to the daemon's executable.
const GuardName = "mcpproxy-guard"

// guardBinary is the program that runs guards: mcpproxy-guard beside the executable when it
// is there (a regular, executable file), else this binary itself. The small one starts in a
// fraction of the time: this binary loads tens of megabytes and initialises every package it
// links before its init can turn into the guard, for each of a hundred upstreams started at
// once. It is looked up once per process.
var guardBinary = sync.OnceValue(func() string {
	if exe, err := os.Executable(); err == nil {
		small := filepath.Join(filepath.Dir(exe), GuardName)
		if fi, err := os.Stat(small); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return small
		}
	}
	return "/proc/self/exe"
})

// guardCommand wraps path and args (args[0] the child's name) in a guard.
func guardCommand(path string, args []string, env []string) (string, []string, []string) {
	return guard.Command(guardBinary(), path, args, env)
}
