package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mcpproxy/mcpproxy/actors"
)

// The tool-level trust commands of `mcpproxy tools`: review, approve, disable, enable.

// newToolsReviewCommand is `tools review [SERVER]`: one server's tools with their approval
// and, for changed ones, what changed; without a server, every server with tools awaiting
// review (and the quarantined ones, which await review as a whole).
func newToolsReviewCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "review [SERVER]",
		Short: "Show tools awaiting review (changed since their approval, or new) and what changed",
		Args:  cobra.MaximumNArgs(1),
	}
	asJSON := addJSONFlag(cmd)
	all := cmd.Flags().Bool("all", false, "with SERVER, list every tool, not only those awaiting review")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx, cancel := cliContext(cmd)
		defer cancel()
		c := newAPIClient(cmd)
		w := cmd.OutOrStdout()
		if len(args) == 1 {
			var st actors.ServerTools
			raw, err := c.do(ctx, "GET", "/api/v1/servers/"+url.PathEscape(args[0])+"/tools", nil, &st)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(w, raw)
			}
			return reviewTable(w, st, *all)
		}
		var list struct {
			Servers []actors.Server `json:"servers"`
		}
		if _, err := c.do(ctx, "GET", "/api/v1/servers", nil, &list); err != nil {
			return err
		}
		var out []actors.ServerTools
		for _, s := range list.Servers {
			if s.ToolsAwaitingReview == 0 && !s.Quarantined {
				continue
			}
			var st actors.ServerTools
			if _, err := c.do(ctx, "GET", "/api/v1/servers/"+url.PathEscape(s.Name)+"/tools", nil, &st); err != nil {
				return err
			}
			out = append(out, st)
		}
		if *asJSON {
			if out == nil {
				out = []actors.ServerTools{}
			}
			return writeJSON(w, map[string]any{"servers": out})
		}
		if len(out) == 0 {
			_, err := fmt.Fprintln(w, "no tool awaits review")
			return err
		}
		for i, st := range out {
			if i > 0 {
				fmt.Fprintln(w)
			}
			if err := reviewTable(w, st, false); err != nil {
				return err
			}
		}
		return nil
	}
	return cmd
}

// reviewTable prints one server's review: a header, the tools (all, or those awaiting
// review, and those of a quarantined server), and what changed in each changed tool.
func reviewTable(w io.Writer, st actors.ServerTools, all bool) error {
	switch {
	case st.Quarantined:
		fmt.Fprintf(w, "server %s is quarantined: approve it with `mcpproxy servers unquarantine %s` (this approves all %d tools)\n", st.Server, st.Server, len(st.Tools))
	default:
		fmt.Fprintf(w, "server %s: %d of %d tools await review\n", st.Server, st.AwaitingReview, len(st.Tools))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOOL\tAPPROVAL\tDISABLED\tDESCRIPTION")
	var changed []actors.ServerTool
	for _, t := range st.Tools {
		if !all && !st.Quarantined && t.Approval == actors.ApprovalApproved {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", strings.TrimPrefix(t.Name, st.Server+":"), t.Approval, yesNo(t.Disabled), orDash(clip(t.Description, 70)))
		if t.Approval == actors.ApprovalChanged {
			changed = append(changed, t)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range changed {
		fmt.Fprintf(w, "\n%s changed:\n", strings.TrimPrefix(t.Name, st.Server+":"))
		for _, d := range definitionDiff(t.Previous, t.Definition) {
			fmt.Fprintln(w, d)
		}
	}
	return nil
}

// definitionDiff lists the fields of a tool definition that differ, as "- pinned" and
// "+ current" lines.
func definitionDiff(prev, cur json.RawMessage) []string {
	var a, b map[string]json.RawMessage
	_ = json.Unmarshal(prev, &a)
	_ = json.Unmarshal(cur, &b)
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if bytes.Equal(a[k], b[k]) {
			continue
		}
		out = append(out, fmt.Sprintf("  %s:", k), "  - "+fieldText(a[k]), "  + "+fieldText(b[k]))
	}
	return out
}

// fieldText shows a definition field: a string as itself, anything else as JSON, absent as
// "(none)".
func fieldText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "(none)"
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// newToolsApproveCommand is `tools approve SERVER [TOOL...|--all]`.
func newToolsApproveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "approve SERVER [TOOL...|--all]",
		Short: "Approve tools of a server as they are now: they come back to search and calls",
		Args:  cobra.MinimumNArgs(1),
	}
	asJSON := addJSONFlag(cmd)
	all := cmd.Flags().Bool("all", false, "approve every tool the server lists now")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		tools := args[1:]
		switch {
		case *all && len(tools) > 0:
			return fmt.Errorf("give tool names or --all, not both")
		case !*all && len(tools) == 0:
			return fmt.Errorf("name the tools to approve, or give --all")
		}
		body := map[string]any{"tools": tools}
		if *all {
			body = map[string]any{"all": true}
		}
		return toolsAction(cmd, *asJSON, args[0], "/tools/approve", body, "approved")
	}
	return cmd
}

// newToolSwitchCommand is `tools disable|enable SERVER TOOL`.
func newToolSwitchCommand(action, short string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   action + " SERVER TOOL",
		Short: short,
		Args:  cobra.ExactArgs(2),
	}
	asJSON := addJSONFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return toolsAction(cmd, *asJSON, args[0], "/tools/"+url.PathEscape(args[1])+"/"+action, nil, action+"d")
	}
	return cmd
}

// toolsAction posts to one of a server's tool routes and prints the outcome.
func toolsAction(cmd *cobra.Command, asJSON bool, server, path string, body any, done string) error {
	ctx, cancel := cliContext(cmd)
	defer cancel()
	var st actors.ServerTools
	raw, err := newAPIClient(cmd).do(ctx, "POST", "/api/v1/servers/"+url.PathEscape(server)+path, body, &st)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(cmd.OutOrStdout(), raw)
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: server %s has %d tools awaiting review\n", done, st.Server, st.AwaitingReview)
	return err
}
