package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpproxy/mcpproxy/actors"
)

// The tokens commands manage agent tokens through the daemon (POST, GET and DELETE
// /api/v1/tokens over the socket). A token is printed once, by create; the daemon keeps
// only its SHA-256.
func newTokensCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Manage agent tokens: credentials for the MCP endpoints limited to some servers and tools",
	}
	cmd.AddCommand(newTokensCreateCommand(), newTokensListCommand(), newTokensRevokeCommand())
	return cmd
}

func newTokensCreateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create NAME --servers a,b [--tools GLOB...] [--read-only] [--expires 720h]",
		Short: "Create an agent token and print it (once: it cannot be shown again)",
		Long: "Create an agent token named NAME for the MCP endpoints (/mcp, /mcp/server/{name}).\n" +
			"--servers names the servers it may use (globs allowed; \"*\" for all). --tools narrows\n" +
			"their tools with globs over server:tool, such as github:get_*. --read-only allows only\n" +
			"tools marked readOnlyHint. --expires ends it after a duration (720h is 30 days).\n\n" +
			"The agent presents it as \"Authorization: Bearer <token>\" or \"X-API-Key: <token>\".",
		Args: cobra.ExactArgs(1),
	}
	servers := cmd.Flags().StringSlice("servers", nil, "servers the token may use, comma-separated (globs; \"*\" for all)")
	tools := cmd.Flags().StringArray("tools", nil, "a glob over server:tool the token may call (repeatable; default every tool of the servers)")
	readOnly := cmd.Flags().Bool("read-only", false, "allow only tools whose readOnlyHint is true")
	expires := cmd.Flags().Duration("expires", 0, "end the token after this long (e.g. 720h); default never")
	asJSON := addJSONFlag(cmd)
	_ = cmd.MarkFlagRequired("servers")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		spec := actors.TokenSpec{Name: args[0], Servers: *servers, Tools: *tools, ReadOnly: *readOnly}
		if *expires < 0 {
			return fmt.Errorf("--expires must be a positive duration, such as 720h")
		}
		if *expires > 0 {
			at := time.Now().Add(*expires).UTC().Truncate(time.Second)
			spec.ExpiresAt = &at
		}
		ctx, cancel := cliContext(cmd)
		defer cancel()
		var out actors.CreatedToken
		raw, err := newAPIClient(cmd).do(ctx, "POST", "/api/v1/tokens", spec, &out)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(cmd.OutOrStdout(), raw)
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "agent token %s created; it is shown only now:\n\n  %s\n\n", out.Name, out.Token)
		fmt.Fprintf(w, "servers: %s\n", strings.Join(out.Servers, ", "))
		if len(out.Tools) > 0 {
			fmt.Fprintf(w, "tools: %s\n", strings.Join(out.Tools, ", "))
		}
		if out.ReadOnly {
			fmt.Fprintln(w, "read-only: only tools marked readOnlyHint")
		}
		if out.ExpiresAt != nil {
			fmt.Fprintf(w, "expires: %s\n", out.ExpiresAt.Local().Format(time.DateTime))
		}
		return nil
	}
	return cmd
}

func newTokensListCommand() *cobra.Command {
	var out struct {
		Tokens []actors.AgentToken `json:"tokens"`
	}
	return newListCommand("List agent tokens (never the tokens themselves)", "/api/v1/tokens", &out,
		func(w io.Writer) error { return tokenTable(w, out.Tokens) })
}

// tokenTable writes the tokens as a table.
func tokenTable(w io.Writer, tokens []actors.AgentToken) error {
	if len(tokens) == 0 {
		_, err := fmt.Fprintln(w, "no agent tokens")
		return err
	}
	when := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Local().Format(time.DateTime)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSERVERS\tTOOLS\tREAD-ONLY\tCREATED\tEXPIRES\tLAST USED")
	for _, t := range tokens {
		expires := when(t.ExpiresAt)
		if t.Expired {
			expires += " (expired)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\n", t.Name, strings.Join(t.Servers, ","),
			orDash(strings.Join(t.Tools, ",")), t.ReadOnly, when(&t.CreatedAt), expires, when(t.LastUsedAt))
	}
	return tw.Flush()
}

func newTokensRevokeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke an agent token; its open MCP sessions close at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := cliContext(cmd)
			defer cancel()
			if _, err := newAPIClient(cmd).do(ctx, "DELETE", "/api/v1/tokens/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "agent token %s revoked\n", args[0])
			return err
		},
	}
}
