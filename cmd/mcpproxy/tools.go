package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mcpproxy/mcpproxy/actors"
)

func newToolsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tools",
		Short: "Search the tools of the reachable servers; review, approve and switch single tools",
	}
	search := &cobra.Command{
		Use:   "search QUERY",
		Short: "Rank the tools agents can reach for a query",
		Args:  cobra.MinimumNArgs(1),
	}
	asJSON := addJSONFlag(search)
	limit := search.Flags().Int("limit", 15, "at most this many results (1..1000)")
	search.RunE = func(cmd *cobra.Command, args []string) error {
		ctx, cancel := cliContext(cmd)
		defer cancel()
		q := url.Values{"q": {strings.Join(args, " ")}, "limit": {strconv.Itoa(*limit)}}
		var out struct {
			Tools []actors.ToolHit `json:"tools"`
			Total int              `json:"total"`
		}
		raw, err := newAPIClient(cmd).do(ctx, "GET", "/api/v1/tools?"+q.Encode(), nil, &out)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(cmd.OutOrStdout(), raw)
		}
		w := cmd.OutOrStdout()
		if len(out.Tools) == 0 {
			_, err := fmt.Fprintf(w, "no tool matches (%d tools indexed)\n", out.Total)
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOOL\tSCORE\tDESCRIPTION")
		for _, t := range out.Tools {
			fmt.Fprintf(tw, "%s\t%.2f\t%s\n", t.Name, t.Score, orDash(clip(t.Description, 70)))
		}
		return tw.Flush()
	}
	cmd.AddCommand(search)
	cmd.AddCommand(newToolsReviewCommand(), newToolsApproveCommand())
	cmd.AddCommand(newToolSwitchCommand("disable", "Disable one tool of a server: agents can neither see nor call it (saved in disabled_tools)"))
	cmd.AddCommand(newToolSwitchCommand("enable", "Enable a disabled tool of a server again"))
	return cmd
}
