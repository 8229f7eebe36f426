package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// sessionAnswer is one MCP session as GET /api/v1/sessions lists it.
type sessionAnswer struct {
	ID            string     `json:"id"`
	ClientName    string     `json:"client_name"`
	ClientVersion string     `json:"client_version"`
	Status        string     `json:"status"`
	StartedAt     time.Time  `json:"started_at"`
	LastActivity  *time.Time `json:"last_activity"`
	ToolCalls     int        `json:"tool_calls"`
	Credential    string     `json:"credential"`
}

func newSessionsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "Inspect the MCP sessions of agents",
	}
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List recent MCP sessions",
		Args:    cobra.NoArgs,
	}
	asJSON := addJSONFlag(list)
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, cancel := cliContext(cmd)
		defer cancel()
		var out struct {
			Sessions []sessionAnswer `json:"sessions"`
		}
		raw, err := newAPIClient(cmd).do(ctx, "GET", "/api/v1/sessions", nil, &out)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(cmd.OutOrStdout(), raw)
		}
		w := cmd.OutOrStdout()
		if len(out.Sessions) == 0 {
			_, err := fmt.Fprintln(w, "no sessions")
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCLIENT\tCREDENTIAL\tSTATUS\tSTARTED\tLAST ACTIVITY\tTOOL CALLS")
		for _, s := range out.Sessions {
			last := "-"
			if s.LastActivity != nil {
				last = s.LastActivity.Local().Format(time.DateTime)
			}
			client := s.ClientName
			if s.ClientVersion != "" {
				client += " " + s.ClientVersion
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", clip(s.ID, 24), orDash(client), orDash(s.Credential), s.Status,
				s.StartedAt.Local().Format(time.DateTime), last, s.ToolCalls)
		}
		return tw.Flush()
	}
	cmd.AddCommand(list)
	return cmd
}
