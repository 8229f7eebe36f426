package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpproxy/mcpproxy/actors"
)

// loginWait bounds how long `servers login` waits: the daemon accepts the callback of a
// login for ten minutes.
const loginWait = 10 * time.Minute

func newServersLoginCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "login NAME",
		Short: "Log in to an OAuth-protected http or sse server: prints the URL, opens a browser, waits until done",
		Args:  cobra.ExactArgs(1),
	}
	noBrowser := cmd.Flags().Bool("no-browser", false, "only print the URL; do not open a browser")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c := newAPIClient(cmd)
		ctx, cancel := cliContext(cmd)
		var ls actors.LoginStart
		_, err := c.do(ctx, "POST", "/api/v1/servers/"+url.PathEscape(args[0])+"/login", nil, &ls)
		cancel()
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "Open this URL to log in to %s:\n\n  %s\n\n", args[0], ls.AuthorizationURL)
		if !*noBrowser {
			openBrowser(ls.AuthorizationURL)
		}
		fmt.Fprintln(out, "Waiting for the login to complete (Ctrl-C to stop waiting)...")
		wctx, wcancel := context.WithTimeout(cmd.Context(), loginWait)
		defer wcancel()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return fmt.Errorf("the login did not complete within %s", loginWait)
			case <-t.C:
			}
			var s struct {
				Server actors.Server `json:"server"`
			}
			rctx, rcancel := context.WithTimeout(wctx, requestTimeout)
			_, err := c.do(rctx, "GET", "/api/v1/servers/"+url.PathEscape(args[0]), nil, &s)
			rcancel()
			if err != nil {
				return err
			}
			if s.Server.Auth != nil && s.Server.Auth.LoggedIn && s.Server.State != actors.StateNeedsAuth {
				fmt.Fprintf(out, "Logged in to %s (state %s).\n", args[0], s.Server.State)
				return nil
			}
		}
	}
	return cmd
}

func newServersLogoutCommand() *cobra.Command {
	return newServerActionCommand("logout", "Log out of an OAuth server: revoke (where offered) and delete its tokens", "logout", nil)
}

// openBrowser tries the desktop's URL opener; without one (a headless machine) the printed
// URL is enough.
func openBrowser(u string) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return
		}
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err == nil {
		go func() { _ = cmd.Wait() }()
	}
}
