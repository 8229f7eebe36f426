package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpproxy/mcpproxy/actors"
)

// The bulk commands: servers enable|disable|restart|reconnect over a selection of servers
// (names, --all, --match GLOB, --state STATE), one call of the bulk routes
// (POST /api/v1/servers/enable_all...) with a selection body, then, with --wait, the
// operation followed by polling GET /api/v1/operations/{id} (polling, not /events: the
// operation holds every server's outcome, so a missed event costs nothing, and the wait
// needs no stream parser).
//
// One NAME with no selector and no explicit --wait keeps the per-server route and its
// answer (POST /api/v1/servers/NAME/ACTION: the server's JSON, 409 for a restart of a
// disabled server), as before the bulk commands; reconnect has no per-server route.

// errSomeFailed is the exit status 1 of a wait in which a server failed (the summary
// names them).
var errSomeFailed = errors.New("some servers failed")

// pollEvery is how often --wait asks for the operation's progress.
const pollEvery = 200 * time.Millisecond

type bulkFlags struct {
	all, wait, asJSON bool
	match             string
	states            []string
	timeout           time.Duration
}

func newBulkCommand(use, short, action, op string) *cobra.Command {
	var f bulkFlags
	cmd := &cobra.Command{
		Use:   use + " [NAME...]",
		Short: short,
		Long: short + ".\n\nSelect servers by NAME, --all, --match GLOB and --state STATE (every selector given " +
			"narrows the set). --wait follows the operation until every server has settled and exits 1 when one " +
			"failed; it is on by default when stdout is a terminal. One NAME alone (without --wait) acts on that " +
			"server at once and prints it.",
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.all, "all", false, "every server")
	fl.StringVar(&f.match, "match", "", "the servers whose name matches GLOB (*, ?, [...])")
	fl.StringArrayVar(&f.states, "state", nil, "the servers in STATE now (repeatable): disabled, connecting, ready, error, backoff, needs_auth")
	fl.BoolVar(&f.wait, "wait", false, "follow the operation until every server has settled (default when stdout is a terminal)")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Minute, "how long --wait waits at most")
	fl.BoolVar(&f.asJSON, "json", false, "print the API's JSON answer (with --wait: the finished operation)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		selected := f.all || f.match != "" || len(f.states) > 0
		if !selected && len(args) == 0 {
			return fmt.Errorf("name a server, or select some with --all, --match or --state")
		}
		if f.all && (len(args) > 0 || f.match != "" || len(f.states) > 0) {
			return fmt.Errorf("--all selects every server: give it alone")
		}
		file, isFile := cmd.OutOrStdout().(*os.File)
		term := isFile && isTerminal(file)
		if !cmd.Flags().Changed("wait") {
			f.wait = term && (selected || len(args) > 1 || action == "")
		}
		if action != "" && !selected && len(args) == 1 && !cmd.Flags().Changed("wait") {
			return serverAction(cmd, args[0], action, nil, f.asJSON)
		}
		return runBulk(cmd, op, f, args, term)
	}
	return cmd
}

func runBulk(cmd *cobra.Command, op string, f bulkFlags, names []string, term bool) error {
	sel := actors.Selection{Servers: names, Match: f.match, State: f.states}
	ctx, cancel := cliContext(cmd)
	var res actors.BulkResult
	raw, err := newAPIClient(cmd).do(ctx, "POST", "/api/v1/servers/"+op, sel, &res)
	cancel()
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if !f.wait {
		if f.asJSON {
			return printJSON(w, raw)
		}
		_, err := fmt.Fprintf(w, "%s: %d servers, %d acted on, %d skipped; operation %s\n",
			op, res.Total, res.Successful, res.Skipped, res.Operation)
		return err
	}
	final, err := waitOperation(cmd, res.Operation, f, term)
	if err != nil {
		return err
	}
	if f.asJSON {
		if err := writeJSON(w, final); err != nil {
			return err
		}
	} else if err := operationSummary(w, final); err != nil {
		return err
	}
	if final.Failed > 0 {
		return errSomeFailed
	}
	return nil
}

// waitOperation polls the operation until it is done or --timeout passes. On a terminal
// (and without --json) it redraws one progress line; otherwise (without --json) it prints
// one line per server as it settles.
func waitOperation(cmd *cobra.Command, id string, f bulkFlags, term bool) (actors.Operation, error) {
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	api := newAPIClient(cmd)
	w := cmd.OutOrStdout()
	seen := map[string]bool{}
	var op actors.Operation
	for {
		rctx, rcancel := context.WithTimeout(ctx, requestTimeout)
		_, err := api.do(rctx, "GET", "/api/v1/operations/"+url.PathEscape(id), nil, &op)
		rcancel()
		if err != nil {
			if ctx.Err() != nil {
				return op, fmt.Errorf("operation %s did not finish within %s", id, f.timeout)
			}
			return op, err
		}
		switch {
		case f.asJSON:
		case term:
			fmt.Fprintf(w, "\r%d/%d ready, %d failed, %d skipped", op.Ready, op.Total, op.Failed, op.Skipped)
			if op.Done {
				fmt.Fprintln(w)
			}
		default:
			for _, s := range op.Servers {
				if s.Status != actors.OpPending && !seen[s.Name] {
					seen[s.Name] = true
					fmt.Fprintf(w, "%s %s%s\n", s.Name, s.Status, errSuffix(s.Error))
				}
			}
		}
		if op.Done {
			return op, nil
		}
		select {
		case <-ctx.Done():
			if term && !f.asJSON {
				fmt.Fprintln(w)
			}
			return op, fmt.Errorf("operation %s did not finish within %s: %d of %d servers still pending", id, f.timeout, op.Pending, op.Total)
		case <-time.After(pollEvery):
		}
	}
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ": " + e
}

// operationSummary is the table at the end of a wait: the counts, then every server that
// did not end ready.
func operationSummary(w io.Writer, op actors.Operation) error {
	fmt.Fprintf(w, "%s: %d servers: %d ready, %d failed, %d skipped\n", op.Op, op.Total, op.Ready, op.Failed, op.Skipped)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tERROR")
	for _, s := range op.Servers {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.Status, orDash(clip(s.Error, 80)))
	}
	return tw.Flush()
}

// serverAction is `servers ACTION NAME` on the per-server route: POST
// /api/v1/servers/NAME/ACTION, printing the server.
func serverAction(cmd *cobra.Command, name, action string, body any, asJSON bool) error {
	ctx, cancel := cliContext(cmd)
	defer cancel()
	var out struct {
		Server actors.Server `json:"server"`
	}
	raw, err := newAPIClient(cmd).do(ctx, "POST", "/api/v1/servers/"+url.PathEscape(name)+"/"+action, body, &out)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(cmd.OutOrStdout(), raw)
	}
	s := out.Server
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "server %s: state %s, enabled %s, quarantined %s\n",
		s.Name, s.State, strconv.FormatBool(s.Enabled), strconv.FormatBool(s.Quarantined))
	return err
}
