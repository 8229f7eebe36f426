package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpproxy/mcpproxy/cmd/mcpproxy/daemon"
	"github.com/mcpproxy/mcpproxy/config"
)

// shutdownTimeout bounds the whole shutdown (ARCHITECTURE.md).
const shutdownTimeout = 10 * time.Second

func newServeCommand() *cobra.Command {
	var configPath, listen, logLevel string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the proxy daemon",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dataDir, _ := cmd.Flags().GetString("data-dir")
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return &exitError{code: 2, err: fmt.Errorf("--log-level: %w", err)}
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			// Some of mcp-go's transports log through slog.Default whatever logger they are
			// given; route those through the same level.
			slog.SetDefault(logger)
			stopProfile, err := startCPUProfile()
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer stopProfile()
			d, err := daemon.Start(cmd.Context(), daemon.Options{
				ConfigPath: configPath, DataDir: dataDir, Listen: listen, Logger: logger,
				Out: cmd.OutOrStdout(), Version: version,
			})
			if err != nil {
				var ve *config.ValidationError
				if errors.As(err, &ve) {
					return &exitError{code: 2, err: fmt.Errorf("invalid config: %w", err)}
				}
				return &exitError{code: 1, err: err}
			}
			watchHeapProfile(cmd.Context(), logger)
			logger.Info("mcpproxy started", "listen", d.Addr(), "socket", d.SocketPath, "config", d.ConfigPath)
			<-cmd.Context().Done()
			logger.Info("shutting down")
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			if err := d.Shutdown(ctx); err != nil {
				logger.Error("shutdown", "err", err)
				return &exitError{code: 1, err: errors.New("")}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "config file (default <data-dir>/mcp_config.json)")
	cmd.Flags().StringVar(&listen, "listen", "", "TCP address to listen on (default 127.0.0.1:8080)")
	cmd.Flags().StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	return cmd
}
