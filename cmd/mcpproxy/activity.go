package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// activityRecord is one record as the activity API gives it (the fields the CLI shows).
type activityRecord struct {
	ID         uint64          `json:"id"`
	StartedAt  time.Time       `json:"started_at"`
	DurationMS float64         `json:"duration_ms"`
	Endpoint   string          `json:"endpoint"`
	Server     string          `json:"server"`
	Tool       string          `json:"tool"`
	Method     string          `json:"method"`
	Name       string          `json:"name"`
	SessionID  string          `json:"session_id"`
	Client     json.RawMessage `json:"client"`
	Credential string          `json:"credential"`
	Outcome    string          `json:"outcome"`
	Reason     string          `json:"reason"`
	Error      string          `json:"error"`
}

func (r activityRecord) what() string {
	if r.Tool != "" {
		return r.Tool
	}
	return r.Method + " " + r.Name
}

func (r activityRecord) outcome() string {
	if r.Reason != "" {
		return r.Outcome + " (" + r.Reason + ")"
	}
	return r.Outcome
}

func newActivityCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "activity",
		Short: "The activity log: every tool call agents made through the MCP endpoints",
	}
	cmd.AddCommand(newActivityListCommand(), newActivityShowCommand(), newActivityExportCommand())
	return cmd
}

// filterFlags are the filters of list and export; query builds their query string.
type filterFlags struct {
	server, tool, status, session, since, until string
}

func addFilterFlags(cmd *cobra.Command) *filterFlags {
	f := &filterFlags{}
	cmd.Flags().StringVar(&f.server, "server", "", "only calls to this server")
	cmd.Flags().StringVar(&f.tool, "tool", "", "only calls of this tool (or resource uri, prompt name)")
	cmd.Flags().StringVar(&f.status, "status", "", "only this outcome: ok, tool_error, refused, error")
	cmd.Flags().StringVar(&f.session, "session", "", "only calls of this MCP session")
	cmd.Flags().StringVar(&f.since, "since", "", "only calls started at or after this RFC 3339 time")
	cmd.Flags().StringVar(&f.until, "until", "", "only calls started at or before this RFC 3339 time")
	return f
}

func (f *filterFlags) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"server": f.server, "tool": f.tool, "status": f.status,
		"session": f.session, "since": f.since, "until": f.until} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

func newActivityListCommand() *cobra.Command {
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List recent tool calls, newest first (--follow: oldest first, then live)",
		Args:    cobra.NoArgs,
	}
	f := addFilterFlags(list)
	limit := list.Flags().Int("limit", 50, "how many records to show (1 to 1000)")
	follow := list.Flags().BoolP("follow", "f", false, "keep printing new records as they are recorded")
	asJSON := list.Flags().Bool("json", false, "print the API's JSON (with --follow, one record per line)")
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		c := newAPIClient(cmd)
		q := f.query()
		q.Set("limit", strconv.Itoa(*limit))
		if !*follow {
			ctx, cancel := cliContext(cmd)
			defer cancel()
			var page struct {
				Records []activityRecord `json:"records"`
			}
			raw, err := c.do(ctx, "GET", "/api/v1/activity?"+q.Encode(), nil, &page)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			return printActivity(cmd.OutOrStdout(), page.Records)
		}
		return followActivity(cmd, c, q, f, *asJSON)
	}
	return list
}

func printActivity(w io.Writer, recs []activityRecord) error {
	if len(recs) == 0 {
		_, err := fmt.Fprintln(w, "no activity")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTARTED\tDURATION\tSERVER\tTOOL\tOUTCOME\tCREDENTIAL\tSESSION")
	for _, r := range recs {
		printActivityRow(tw, r)
	}
	return tw.Flush()
}

func printActivityRow(w io.Writer, r activityRecord) {
	fmt.Fprintf(w, "%d\t%s\t%.1f ms\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.StartedAt.Local().Format(time.DateTime+".000"),
		r.DurationMS, orDash(r.Server), clip(r.what(), 40), r.outcome(), orDash(r.Credential), clip(orDash(r.SessionID), 16))
}

// followActivity subscribes to /events first, then prints the newest records oldest first,
// then every activity.recorded after them, until interrupted: nothing recorded in between
// is missed or printed twice.
func followActivity(cmd *cobra.Command, c *apiClient, q url.Values, f *filterFlags, asJSON bool) error {
	ctx := cmd.Context()
	resp, err := c.openStream(ctx, "/events")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	lctx, cancel := cliContext(cmd)
	defer cancel()
	var page struct {
		Records []json.RawMessage `json:"records"`
	}
	if _, err := c.do(lctx, "GET", "/api/v1/activity?"+q.Encode(), nil, &page); err != nil {
		return err
	}
	slices.Reverse(page.Records)
	out := cmd.OutOrStdout()
	var last uint64
	emit := func(r activityRecord, raw json.RawMessage) {
		last = max(last, r.ID)
		if asJSON {
			var b bytes.Buffer
			if json.Compact(&b, raw) == nil {
				raw = b.Bytes()
			}
			fmt.Fprintf(out, "%s\n", raw)
			return
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		printActivityRow(tw, r)
		_ = tw.Flush()
	}
	if !asJSON {
		fmt.Fprintln(out, "ID  STARTED  DURATION  SERVER  TOOL  OUTCOME  CREDENTIAL  SESSION")
	}
	for _, raw := range page.Records {
		var r activityRecord
		if json.Unmarshal(raw, &r) == nil {
			emit(r, raw)
		}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	// An event's fields come in any order (the hub writes data before event); it is
	// complete at the blank line.
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = strings.TrimSpace(strings.TrimPrefix(line, "data:"))
		case line == "":
			var r activityRecord
			if event == "activity.recorded" && json.Unmarshal([]byte(data), &r) == nil && r.ID > last && f.matches(r) {
				emit(r, json.RawMessage(data))
			}
			event, data = "", ""
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
		return err
	}
	return nil
}

// matches applies the filters to a live record, as the API applies them to stored ones.
func (f *filterFlags) matches(r activityRecord) bool {
	since, _ := time.Parse(time.RFC3339Nano, f.since)
	until, _ := time.Parse(time.RFC3339Nano, f.until)
	switch {
	case f.server != "" && r.Server != f.server:
	case f.tool != "" && r.Tool != f.tool && !(r.Tool == "" && r.Name == f.tool):
	case f.status != "" && r.Outcome != f.status:
	case f.session != "" && r.SessionID != f.session:
	case !since.IsZero() && r.StartedAt.Before(since):
	case !until.IsZero() && r.StartedAt.After(until):
	default:
		return true
	}
	return false
}

func newActivityShowCommand() *cobra.Command {
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one activity record in full (arguments included)",
		Args:  cobra.ExactArgs(1),
	}
	show.RunE = func(cmd *cobra.Command, args []string) error {
		if _, err := strconv.ParseUint(args[0], 10, 64); err != nil {
			return fmt.Errorf("ID %q must be a record id (a positive number)", args[0])
		}
		ctx, cancel := cliContext(cmd)
		defer cancel()
		var out struct {
			Record json.RawMessage `json:"record"`
		}
		if _, err := newAPIClient(cmd).do(ctx, "GET", "/api/v1/activity/"+args[0], nil, &out); err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), out.Record)
	}
	return show
}

func newActivityExportCommand() *cobra.Command {
	export := &cobra.Command{
		Use:   "export",
		Short: "Write every matching record to standard output, as NDJSON or CSV",
		Args:  cobra.NoArgs,
	}
	f := addFilterFlags(export)
	format := export.Flags().String("format", "ndjson", "ndjson or csv")
	export.RunE = func(cmd *cobra.Command, _ []string) error {
		if *format != "ndjson" && *format != "csv" {
			return fmt.Errorf("--format %q must be ndjson or csv", *format)
		}
		c := newAPIClient(cmd)
		q := f.query()
		q.Set("format", *format)
		resp, err := c.openStream(cmd.Context(), "/api/v1/activity/export?"+q.Encode())
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(cmd.OutOrStdout(), resp.Body)
		return err
	}
	return export
}

// openStream sends a GET whose answer streams (an export, /events): no overall timeout, only
// ctx. A non-200 answer is returned as its API error.
func (c *apiClient) openStream(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://localhost"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, &errNoDaemon{socket: c.socket, err: err}
		}
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		ae := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, ae) != nil || ae.Message == "" {
			ae.Message = fmt.Sprintf("GET %s: %s", path, resp.Status)
		}
		return nil, ae
	}
	return resp, nil
}
