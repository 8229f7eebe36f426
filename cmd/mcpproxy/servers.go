package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/config/clientconf"
)

func newServersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "servers",
		Short: "List and control upstream servers",
	}
	cmd.AddCommand(newServersListCommand())
	addManageCommands(cmd)
	for _, a := range []struct{ use, short, action, op string }{
		{"enable", "Enable servers (they connect; the flags are saved in the config)", "enable", actors.BulkEnableAll},
		{"disable", "Disable servers (their processes stop; the flags are saved in the config)", "disable", actors.BulkDisableAll},
		{"restart", "Drop servers' connections and connect again", "restart", actors.BulkRestartAll},
		{"reconnect", "Connect servers that are not ready now, skipping their backoff delay", "", actors.BulkReconnect},
	} {
		cmd.AddCommand(newBulkCommand(a.use, a.short, a.action, a.op))
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
		var b any
		if body != nil {
			b = body()
		}
		return serverAction(cmd, args[0], action, b, *asJSON)
	}
	return cmd
}

// The commands that change the server list: servers add, edit, remove, show, logs and
// import. Each is one REST call over the socket (POST, PATCH, DELETE /api/v1/servers...),
// so the daemon validates and saves exactly as it does for the API and the dashboard.

func addManageCommands(cmd *cobra.Command) {
	cmd.AddCommand(newServersAddCommand(), newServersEditCommand(), newServersRemoveCommand(),
		newServersShowCommand(), newServersLogsCommand(), newServersImportCommand())
}

// entryFlags are the flags add and edit share.
type entryFlags struct {
	url, protocol, workingDir string
	env, headers, unsetEnv    []string
	unsetHeaders              []string
	docker                    string
	approve, disabled         bool
}

func (f *entryFlags) register(cmd *cobra.Command, edit bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "", "the server's URL (an http or sse server)")
	fl.StringVar(&f.protocol, "protocol", "", "stdio, http or sse (inferred when left out: a command is stdio, a URL http)")
	fl.StringVar(&f.workingDir, "working-dir", "", "the stdio server's working directory")
	fl.StringArrayVar(&f.env, "env", nil, "an environment variable K=V for the stdio server (repeatable); V may be ${secret:NAME} or ${env:NAME}")
	fl.StringArrayVar(&f.headers, "header", nil, "an HTTP header K=V for a remote server (repeatable)")
	fl.StringVar(&f.docker, "docker", "", "run the stdio server in a Docker container (--docker, or --docker=IMAGE)")
	fl.Lookup("docker").NoOptDefVal = "default"
	fl.BoolVar(&f.approve, "approve", false, "approve the server now (not quarantined): agents can use its tools at once")
	fl.BoolVar(&f.disabled, "disabled", false, "add the server disabled")
	if edit {
		fl.StringArrayVar(&f.unsetEnv, "unset-env", nil, "remove an environment variable (repeatable)")
		fl.StringArrayVar(&f.unsetHeaders, "unset-header", nil, "remove an HTTP header (repeatable)")
	}
}

// pairs turns K=V flags into a map (a value of nil for each name in unset).
func pairs(flag string, kv, unset []string) (map[string]any, error) {
	if len(kv) == 0 && len(unset) == 0 {
		return nil, nil
	}
	out := map[string]any{}
	for _, p := range kv {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: want NAME=VALUE", flag, p)
		}
		out[k] = v
	}
	for _, k := range unset {
		out[k] = nil
	}
	return out, nil
}

// entry builds the JSON of the flags that were given (for edit, a merge patch).
func (f *entryFlags) entry(cmd *cobra.Command) (map[string]any, error) {
	e := map[string]any{}
	changed := cmd.Flags().Changed
	if changed("url") {
		e["url"] = f.url
	}
	if changed("protocol") {
		e["protocol"] = f.protocol
	}
	if changed("working-dir") {
		e["working_dir"] = f.workingDir
	}
	env, err := pairs("env", f.env, f.unsetEnv)
	if err != nil {
		return nil, err
	}
	if env != nil {
		e["env"] = env
	}
	headers, err := pairs("header", f.headers, f.unsetHeaders)
	if err != nil {
		return nil, err
	}
	if headers != nil {
		e["headers"] = headers
	}
	if changed("docker") {
		iso := map[string]any{"enabled": true}
		if f.docker != "default" {
			iso["image"] = f.docker
		}
		e["isolation"] = iso
	}
	if changed("approve") {
		e["quarantined"] = !f.approve
	}
	if changed("disabled") {
		e["enabled"] = !f.disabled
	}
	return e, nil
}

func newServersAddCommand() *cobra.Command {
	var f entryFlags
	cmd := &cobra.Command{
		Use:   "add NAME [--url URL | -- COMMAND [ARGS...]]",
		Short: "Add a server (quarantined until approved, unless --approve)",
		Long: `Add a server to the running daemon; it is saved in the config file and starts connecting.

  mcpproxy servers add files -- npx -y @modelcontextprotocol/server-filesystem /srv
  mcpproxy servers add github --url https://api.example.com/mcp --header 'Authorization=Bearer ${secret:GITHUB_TOKEN}'

A new server is quarantined: its tools can be reviewed (servers show) but agents cannot
use them until it is approved (servers unquarantine NAME, or --approve now).`,
		Args: cobra.MinimumNArgs(1),
	}
	f.register(cmd, false)
	asJSON := addJSONFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		e, err := f.entry(cmd)
		if err != nil {
			return err
		}
		e["name"] = args[0]
		if dash := cmd.ArgsLenAtDash(); dash >= 0 {
			if dash != 1 {
				return errors.New("give the name before --: servers add NAME -- COMMAND [ARGS...]")
			}
			if len(args) < 2 {
				return errors.New("a command is needed after --")
			}
			e["command"], e["args"] = args[1], args[2:]
		} else if len(args) > 1 {
			return errors.New("put the server's command after --: servers add NAME -- COMMAND [ARGS...]")
		}
		if e["quarantined"] == nil {
			e["quarantined"] = true
		}
		ctx, cancel := cliContext(cmd)
		defer cancel()
		var out serverAnswer
		raw, err := newAPIClient(cmd).do(ctx, "POST", "/api/v1/servers", e, &out)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(cmd.OutOrStdout(), raw)
		}
		s := out.Server
		msg := fmt.Sprintf("added server %s (state %s)", s.Name, s.State)
		if s.Quarantined {
			msg += "; it is quarantined: review its tools with `mcpproxy servers show " + s.Name + "`, then `mcpproxy servers unquarantine " + s.Name + "`"
		}
		_, err = fmt.Fprintln(cmd.OutOrStdout(), msg)
		return err
	}
	return cmd
}

type serverAnswer struct {
	Server actors.Server `json:"server"`
}

func newServersEditCommand() *cobra.Command {
	var f entryFlags
	cmd := &cobra.Command{
		Use:   "edit NAME [flags] [-- COMMAND [ARGS...]]",
		Short: "Change a server's entry (only what the flags name); it reconnects if its definition changed",
		Long: `Change a server's entry. Only what is given changes: --env K=V adds or replaces one
variable and keeps the others, --unset-env K removes one; -- COMMAND ARGS replaces the command
line. Other servers are not touched.`,
		Args: cobra.MinimumNArgs(1),
	}
	f.register(cmd, true)
	asJSON := addJSONFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		e, err := f.entry(cmd)
		if err != nil {
			return err
		}
		if dash := cmd.ArgsLenAtDash(); dash >= 0 && len(args) > 1 {
			e["command"], e["args"] = args[1], args[2:]
		} else if len(args) > 1 {
			return errors.New("put the server's command after --: servers edit NAME -- COMMAND [ARGS...]")
		}
		if len(e) == 0 {
			return errors.New("nothing to change: give --env, --header, --url, -- COMMAND ... (see --help)")
		}
		ctx, cancel := cliContext(cmd)
		defer cancel()
		var out serverAnswer
		raw, err := newAPIClient(cmd).do(ctx, "PATCH", "/api/v1/servers/"+url.PathEscape(args[0]), e, &out)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(cmd.OutOrStdout(), raw)
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "updated server %s (state %s)\n", out.Server.Name, out.Server.State)
		return err
	}
	return cmd
}

func newServersRemoveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"rm"},
		Short:   "Remove a server: its processes stop and its entry leaves the config file",
		Args:    cobra.ExactArgs(1),
	}
	asJSON := addJSONFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx, cancel := cliContext(cmd)
		defer cancel()
		raw, err := newAPIClient(cmd).do(ctx, "DELETE", "/api/v1/servers/"+url.PathEscape(args[0]), nil, nil)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(cmd.OutOrStdout(), raw)
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "removed server %s\n", args[0])
		return err
	}
	return cmd
}

func newServersShowCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a server's details and tools",
		Args:  cobra.ExactArgs(1),
	}
	asJSON := addJSONFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx, cancel := cliContext(cmd)
		defer cancel()
		c := newAPIClient(cmd)
		name := url.PathEscape(args[0])
		var srv serverAnswer
		rawSrv, err := c.do(ctx, "GET", "/api/v1/servers/"+name, nil, &srv)
		if err != nil {
			return err
		}
		var tools actors.ServerTools
		rawTools, err := c.do(ctx, "GET", "/api/v1/servers/"+name+"/tools", nil, &tools)
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if *asJSON {
			return writeJSON(w, map[string]json.RawMessage{"server": json.RawMessage(rawSrv), "tools": json.RawMessage(rawTools)})
		}
		s := srv.Server
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "name\t%s\n", s.Name)
		fmt.Fprintf(tw, "protocol\t%s\n", s.Protocol)
		if s.URL != "" {
			fmt.Fprintf(tw, "url\t%s\n", s.URL)
		} else {
			fmt.Fprintf(tw, "command\t%s\n", strings.Join(append([]string{s.Command}, s.Args...), " "))
		}
		fmt.Fprintf(tw, "state\t%s\n", s.State)
		fmt.Fprintf(tw, "enabled\t%s\n", yesNo(s.Enabled))
		fmt.Fprintf(tw, "quarantined\t%s\n", yesNo(s.Quarantined))
		fmt.Fprintf(tw, "isolated\t%s\n", yesNo(s.Isolated))
		fmt.Fprintf(tw, "retries\t%d\n", s.RetryCount)
		fmt.Fprintf(tw, "last error\t%s\n", orDash(s.LastError))
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "\ntools (%d):\n", len(tools.Tools))
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, t := range tools.Tools {
			fmt.Fprintf(tw, "  %s\t%s\n", t.Name, clip(t.Description, 80))
		}
		return tw.Flush()
	}
	return cmd
}

func newServersLogsCommand() *cobra.Command {
	var follow bool
	var tail int
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Show a server's recent log: its stderr and the proxy's messages about it (-f follows)",
		Args:  cobra.ExactArgs(1),
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until interrupted")
	cmd.Flags().IntVarP(&tail, "tail", "n", actors.DefaultLogTail, "how many of the last lines to show (at most 1000)")
	asJSON := addJSONFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c := newAPIClient(cmd)
		path := fmt.Sprintf("/api/v1/servers/%s/logs?tail=%d", url.PathEscape(args[0]), tail)
		w := cmd.OutOrStdout()
		if !follow {
			ctx, cancel := cliContext(cmd)
			defer cancel()
			var out struct {
				Lines []actors.LogLine `json:"lines"`
			}
			raw, err := c.do(ctx, "GET", path, nil, &out)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(w, raw)
			}
			for _, l := range out.Lines {
				printLogLine(w, l)
			}
			return nil
		}
		return c.stream(cmd.Context(), path+"&follow=true", func(event, data string) bool {
			if event == "end" {
				fmt.Fprintln(w, "(the server was removed)")
				return false
			}
			if *asJSON {
				fmt.Fprintln(w, data)
				return true
			}
			var l actors.LogLine
			if json.Unmarshal([]byte(data), &l) == nil {
				printLogLine(w, l)
			}
			return true
		})
	}
	return cmd
}

func printLogLine(w io.Writer, l actors.LogLine) {
	fmt.Fprintf(w, "%s %-6s %s\n", l.Time.Local().Format("15:04:05.000"), l.Stream, l.Text)
}

// stream reads an SSE answer, calling each with every event until it returns false, the
// stream ends or ctx is done. Unlike do, it has no overall timeout.
func (c *apiClient) stream(ctx context.Context, path string, each func(event, data string) bool) error {
	resp, err := c.openStream(ctx, path)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != "" && !each(event, data) {
				return nil
			}
			event, data = "", ""
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}

func newServersImportCommand() *cobra.Command {
	var from, format string
	cmd := &cobra.Command{
		Use:   "import [FILE]",
		Short: "Import servers from another client's config (Claude Desktop, Cursor, VS Code, Codex); all quarantined",
		Long: `Import the servers of another MCP client's config file into the daemon. Every server
added is quarantined; names already in use are skipped; entries that cannot be used are listed
with the field to fix.

  mcpproxy servers import --from claude-desktop     # the file at its usual path
  mcpproxy servers import --from vscode .vscode/mcp.json
  mcpproxy servers import ~/.codex/config.toml      # the format is detected`,
		Args: cobra.MaximumNArgs(1),
	}
	cmd.Flags().StringVar(&from, "from", "", "the client: "+strings.Join(clientconf.Formats, ", ")+" (reads its file at the usual path when no FILE is given)")
	cmd.Flags().StringVar(&format, "format", "", "same as --from")
	asJSON := addJSONFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if from == "" {
			from = format
		}
		if from != "" && !clientconf.Known(from) {
			return fmt.Errorf("--from %q: want one of %s", from, strings.Join(clientconf.Formats, ", "))
		}
		var path string
		switch {
		case len(args) == 1:
			path = args[0]
		case from != "":
			home, err := os.UserHomeDir()
			if err != nil {
				return err
			}
			path = clientconf.DefaultPath(from, home)
		default:
			return errors.New("give a FILE or --from CLIENT")
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		q := ""
		if from != "" {
			q = "?format=" + from
		}
		ctx, cancel := cliContext(cmd)
		defer cancel()
		var out struct {
			Format  string               `json:"format"`
			Added   []string             `json:"added"`
			Skipped []string             `json:"skipped"`
			Errors  []clientconf.Problem `json:"errors"`
		}
		raw, err := newAPIClient(cmd).do(ctx, "POST", "/api/v1/servers/import"+q, rawBody(data), &out)
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if *asJSON {
			return printJSON(w, raw)
		}
		fmt.Fprintf(w, "read %s as %s\n", path, out.Format)
		fmt.Fprintf(w, "added (quarantined): %s\n", listOrNone(out.Added))
		fmt.Fprintf(w, "skipped (name in use): %s\n", listOrNone(out.Skipped))
		if len(out.Errors) == 0 {
			fmt.Fprintln(w, "could not import: none")
			return nil
		}
		fmt.Fprintln(w, "could not import:")
		for _, p := range out.Errors {
			field := ""
			if p.Field != "" {
				field = "." + p.Field
			}
			fmt.Fprintf(w, "  %s%s: %s\n", p.Server, field, p.Message)
		}
		return nil
	}
	return cmd
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ") + " (" + strconv.Itoa(len(names)) + ")"
}
