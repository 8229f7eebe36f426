// Command mcpproxy is a daemon between AI agents and many upstream MCP servers, and the
// command line that talks to it. `mcpproxy serve` runs the daemon; the other commands talk
// to a running daemon over its Unix socket.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// exitError carries a process exit status out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func main() {
	root := newRootCommand()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.err != nil && ee.err.Error() != "" {
				fmt.Fprintln(os.Stderr, "mcpproxy:", ee.err)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "mcpproxy:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "mcpproxy",
		Short:         "A supervising proxy in front of many MCP servers",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("data-dir", "", "data directory (default ~/.mcpproxy)")
	root.AddCommand(newServeCommand())
	root.AddCommand(newStatusCommand(), newServersCommand(), newToolsCommand(), newSessionsCommand(), newTokensCommand(), newActivityCommand(),
		newSecretsCommand(), newDoctorCommand(), newConnectCommand())
	return root
}
