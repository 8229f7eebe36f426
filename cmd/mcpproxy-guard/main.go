// Command mcpproxy-guard runs one stdio upstream for the mcpproxy daemon: the daemon starts
// it with the command in the environment (package actors/upstream/guard) and uses it when it
// is installed next to the daemon's binary (`make build` puts both in bin/). It links almost
// nothing, so a hundred of them start in about the time of the servers themselves; without
// it the daemon runs its own, much larger, binary as the guard.
package main

import (
	"fmt"
	"os"

	"github.com/mcpproxy/mcpproxy/actors/upstream/guard"
)

func main() {
	guard.Become()
	fmt.Fprintln(os.Stderr, "mcpproxy-guard is started by the mcpproxy daemon, one per stdio upstream; it takes no arguments")
	os.Exit(2)
}
