package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// The command-line client talks to a running daemon over its Unix socket
// <data_dir>/mcpproxy.sock, which needs no API key: the socket's mode (0600) already limits
// it to the daemon's user.

// requestTimeout bounds one CLI request to the daemon.
const requestTimeout = 30 * time.Second

// errNoDaemon says no daemon answers on the socket.
type errNoDaemon struct {
	socket string
	err    error
}

func (e *errNoDaemon) Error() string {
	return fmt.Sprintf("no mcpproxy daemon is running (nothing answers on %s); start one with `mcpproxy serve`", e.socket)
}

func (e *errNoDaemon) Unwrap() error { return e.err }

// rawBody is a request body sent as it is (a file's content), not encoded as JSON.
type rawBody []byte

// apiError is an error response of the API: {"error", "code", "errors"}.
type apiError struct {
	Status  int
	Message string `json:"error"`
	Code    string `json:"code"`
	// Fields are the field errors of an invalid config or server entry.
	Fields []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (e *apiError) Error() string {
	msg := e.Message
	if e.Code != "" {
		msg = fmt.Sprintf("%s (%s)", e.Message, e.Code)
	}
	if len(e.Fields) > 1 {
		for _, f := range e.Fields {
			msg += fmt.Sprintf("\n  %s: %s", f.Field, f.Message)
		}
	}
	return msg
}

// apiClient sends API requests over the daemon's socket.
type apiClient struct {
	dataDir string
	socket  string
	http    *http.Client
}

// defaultDataDir is the daemon's default data dir, ~/.mcpproxy.
func defaultDataDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".mcpproxy"
	}
	return filepath.Join(home, ".mcpproxy")
}

// dataDirOf returns --data-dir, else the default.
func dataDirOf(cmd *cobra.Command) string {
	if dir, _ := cmd.Flags().GetString("data-dir"); dir != "" {
		return dir
	}
	return defaultDataDir()
}

func newAPIClient(cmd *cobra.Command) *apiClient {
	dir := dataDirOf(cmd)
	socket := filepath.Join(dir, "mcpproxy.sock")
	return &apiClient{dataDir: dir, socket: socket, http: &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
		},
	}}
}

// do sends one request; body (when non-nil) is sent as JSON. It returns the raw response body
// of a 2xx answer and decodes it into out when out is non-nil.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	var r io.Reader
	if raw, ok := body.(rawBody); ok {
		r = bytes.NewReader(raw)
	} else if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(data)
	}
	// The host is never resolved (the transport dials the socket); it only fills the
	// request line and passes the daemon's Host check.
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost"+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, &errNoDaemon{socket: c.socket, err: err}
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, ae) != nil || ae.Message == "" {
			ae.Message = fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
		}
		return nil, ae
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return data, nil
}

// newListCommand is a "list" subcommand: GET path, decoded into out; --json prints the
// answer as it came, else table writes what out holds.
func newListCommand(short, path string, out any, table func(w io.Writer) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   short,
		Args:    cobra.NoArgs,
	}
	asJSON := addJSONFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, cancel := cliContext(cmd)
		defer cancel()
		raw, err := newAPIClient(cmd).do(ctx, "GET", path, nil, out)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(cmd.OutOrStdout(), raw)
		}
		return table(cmd.OutOrStdout())
	}
	return cmd
}

// printJSON writes an API answer indented, for --json.
func printJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// writeJSON writes v indented, for --json output the CLI builds itself.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// addJSONFlag adds --json to cmd and returns where its value lands.
func addJSONFlag(cmd *cobra.Command) *bool {
	var b bool
	cmd.Flags().BoolVar(&b, "json", false, "print the API's JSON answer instead of a table")
	return &b
}

// cliContext bounds a CLI request.
func cliContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), requestTimeout)
}

// clip shortens s to n runes for a table cell.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// orDash shows an empty cell as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
