package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpproxy/mcpproxy/config"
	"github.com/mcpproxy/mcpproxy/config/clientconf"
)

// newConnectCommand is `mcpproxy connect CLIENT`: the reverse of servers import. It writes
// the proxy's /mcp entry (URL and API key header) into the client's own config, so that the
// client reaches every upstream through the proxy.
func newConnectCommand() *cobra.Command {
	var path, name, mcpURL string
	var print bool
	cmd := &cobra.Command{
		Use:   "connect " + strings.Join(clientconf.Formats, "|"),
		Short: "Write the proxy's /mcp entry into an MCP client's config (a backup of the file first)",
		Long: `Write the proxy's /mcp entry, with its URL and the API key header, into the client's
config file at its usual path (or --path), keeping every other entry in it. The file is backed
up first (FILE.bak-TIMESTAMP). --print shows the entry instead of writing it.

Claude Desktop starts only stdio servers, so its entry runs mcp-remote (npx) against the
proxy's URL, with the key in the entry's env. Restart the client to pick the entry up.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: clientconf.Formats,
	}
	cmd.Flags().StringVar(&path, "path", "", "the client's config file (default: its usual path)")
	cmd.Flags().StringVar(&name, "name", "mcpproxy", "the entry's name in the client's config")
	cmd.Flags().StringVar(&mcpURL, "url", "", "the proxy's /mcp URL (default: asked of the running daemon, else from the config's listen)")
	cmd.Flags().BoolVar(&print, "print", false, "print the entry instead of writing the file")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		client := args[0]
		if !clientconf.Known(client) {
			return fmt.Errorf("unknown client %q: want one of %s", client, strings.Join(clientconf.Formats, ", "))
		}
		p, err := proxyEntry(cmd, name, mcpURL)
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if print {
			snippet, err := clientconf.Snippet(client, p)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(w, snippet)
			return err
		}
		if path == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return err
			}
			path = clientconf.DefaultPath(client, home)
		}
		backup, err := clientconf.Connect(client, path, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote the %q entry (%s) into %s\n", p.Name, p.URL, path)
		if backup != "" {
			fmt.Fprintf(w, "the previous file is in %s\n", backup)
		}
		_, err = fmt.Fprintf(w, "restart %s to use it\n", client)
		return err
	}
	return cmd
}

// proxyEntry finds the proxy's /mcp URL and API key: the URL from the running daemon
// (GET /api/v1/info over the socket), else from the config file's listen; the key from
// MCPPROXY_API_KEY, else the config file (the CLI runs as the daemon's user).
func proxyEntry(cmd *cobra.Command, name, mcpURL string) (clientconf.Proxy, error) {
	dir := dataDirOf(cmd)
	cfg, err := config.Load(filepath.Join(dir, config.FileName))
	if err != nil && mcpURL == "" {
		return clientconf.Proxy{}, fmt.Errorf("reading the proxy's config: %w", err)
	}
	if cfg == nil {
		cfg = &config.Config{}
	}
	if mcpURL == "" {
		ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
		defer cancel()
		var info struct {
			Endpoints map[string]string `json:"endpoints"`
		}
		_, err := newAPIClient(cmd).do(ctx, "GET", "/api/v1/info", nil, &info)
		var none *errNoDaemon
		switch {
		case err == nil && info.Endpoints["mcp"] != "":
			mcpURL = info.Endpoints["mcp"]
		case err == nil, errors.As(err, &none):
			listen := cfg.Listen
			if listen == "" {
				listen = config.DefaultListen
			}
			mcpURL = "http://" + listen + "/mcp"
		default:
			return clientconf.Proxy{}, err
		}
	}
	key := os.Getenv("MCPPROXY_API_KEY")
	if key == "" {
		key = cfg.APIKey
	}
	if !cfg.MCPAuthRequired() {
		key = "" // /mcp is open: the entry needs no key
	}
	return clientconf.Proxy{Name: name, URL: mcpURL, Key: key}, nil
}
