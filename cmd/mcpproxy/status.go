package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpproxy/mcpproxy/actors"
)

// statusAnswer is GET /api/v1/status.
type statusAnswer struct {
	Status  string               `json:"status"`
	Version string               `json:"version"`
	Uptime  int64                `json:"uptime"`
	Servers actors.StatusServers `json:"servers"`
	Tools   actors.StatusTools   `json:"tools"`
}

// infoAnswer is the part of GET /api/v1/info the status command shows.
type infoAnswer struct {
	PID        int               `json:"pid"`
	Listen     string            `json:"listen"`
	DataDir    string            `json:"data_dir"`
	ConfigPath string            `json:"config_path"`
	Endpoints  map[string]string `json:"endpoints"`
}

func newStatusCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the daemon runs, and a summary of its servers and tools",
		Args:  cobra.NoArgs,
	}
	asJSON := addJSONFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, cancel := cliContext(cmd)
		defer cancel()
		c := newAPIClient(cmd)
		var st statusAnswer
		raw, err := c.do(ctx, "GET", "/api/v1/status", nil, &st)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(cmd.OutOrStdout(), raw)
		}
		var info infoAnswer
		if _, err := c.do(ctx, "GET", "/api/v1/info", nil, &info); err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "mcpproxy %s is %s (pid %d, up %s)\n", st.Version, st.Status, info.PID, time.Duration(st.Uptime)*time.Second)
		fmt.Fprintf(w, "listen:    %s\n", info.Listen)
		if u := info.Endpoints["mcp"]; u != "" {
			fmt.Fprintf(w, "mcp:       %s\n", u)
		}
		fmt.Fprintf(w, "config:    %s\n", info.ConfigPath)
		fmt.Fprintf(w, "data dir:  %s\n", info.DataDir)
		s := st.Servers
		fmt.Fprintf(w, "servers:   %d total, %d connected, %d quarantined, %d disabled, %d in error\n",
			s.Total, s.Connected, s.Quarantined, s.Disabled, s.Errored)
		fmt.Fprintf(w, "tools:     %d reachable by agents\n", st.Tools.Total)
		return nil
	}
	return cmd
}
