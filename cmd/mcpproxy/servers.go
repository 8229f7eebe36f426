package main

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mcpproxy/mcpproxy/actors"
)

func newServersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "servers",
		Short: "List and control upstream servers",
	}
	cmd.AddCommand(newServersListCommand())
	for _, a := range []struct{ use, short, action string }{
		{"enable", "Enable a server (it connects; the flag is saved in the config)", "enable"},
		{"disable", "Disable a server (its process stops; the flag is saved in the config)", "disable"},
		{"restart", "Drop a server's connection and connect again", "restart"},
	} {
		cmd.AddCommand(newServerActionCommand(a.use, a.short, a.action, nil))
	}
	var off bool
	q := newServerActionCommand("quarantine", "Quarantine a server: agents cannot see or call its tools (--off approves it)", "quarantine",
		func() any { return map[string]bool{"quarantined": !off} })
	q.Flags().BoolVar(&off, "off", false, "release the server from quarantine (approve it)")
	cmd.AddCommand(q)
	cmd.AddCommand(newServersLoginCommand(), newServersLogoutCommand())
	cmd.AddCommand(newServerActionCommand("unquarantine", "Approve a quarantined server: its tools become available to agents", "quarantine",
		func() any { return map[string]bool{"quarantined": false} }))
	return cmd
}

func newServersListCommand() *cobra.Command {
	var out struct {
		Servers []actors.Server `json:"servers"`
	}
	return newListCommand("List the servers with their state", "/api/v1/servers", &out,
		func(w io.Writer) error { return serverTable(w, out.Servers) })
}

func serverTable(w io.Writer, servers []actors.Server) error {
	if len(servers) == 0 {
		_, err := fmt.Fprintln(w, "no servers configured")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tPROTOCOL\tTOOLS\tQUARANTINED\tRETRIES\tLAST ERROR")
	for _, s := range servers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\n", s.Name, s.State, s.Protocol, s.ToolsCount,
			yesNo(s.Quarantined), s.RetryCount, orDash(clip(s.LastError, 60)))
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// newServerActionCommand is `servers <use> NAME`: POST /api/v1/servers/NAME/<action>.
func newServerActionCommand(use, short, action string, body func() any) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
	}
	asJSON := addJSONFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx, cancel := cliContext(cmd)
		defer cancel()
		var b any
		if body != nil {
			b = body()
		}
		var out struct {
			Server actors.Server `json:"server"`
		}
		raw, err := newAPIClient(cmd).do(ctx, "POST", "/api/v1/servers/"+url.PathEscape(args[0])+"/"+action, b, &out)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(cmd.OutOrStdout(), raw)
		}
		s := out.Server
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "server %s: state %s, enabled %s, quarantined %s\n",
			s.Name, s.State, strconv.FormatBool(s.Enabled), strconv.FormatBool(s.Quarantined))
		return err
	}
	return cmd
}
