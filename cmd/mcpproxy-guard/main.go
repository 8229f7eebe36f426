// Command mcpproxy-guard runs the stdio upstreams of an mcpproxy daemon: the daemon starts
// one when it starts its first stdio server and speaks to it on a socket (package
// actors/upstream/guard), using it when it is installed next to the daemon's binary (`make
// build` puts both in bin/). It links almost nothing, so it starts quickly and stays small;
// without it the daemon runs its own, much larger, binary as the guard.
package main

import (
	"fmt"
	"os"

	"github.com/mcpproxy/mcpproxy/actors/upstream/guard"
)

func main() {
	guard.Become()
	fmt.Fprintln(os.Stderr, "mcpproxy-guard is started by the mcpproxy daemon, which speaks to it on a socket; it takes no arguments")
	os.Exit(2)
}
