package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mcpproxy/mcpproxy/actors/doctor"
	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
	"github.com/mcpproxy/mcpproxy/config"
)

func newDoctorCommand() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the setup and the running servers; exit 0 when healthy, 1 otherwise",
		Long: "Check the config, the permissions of the data dir, socket and key file, every\n" +
			"${secret:} and ${env:} reference, every stdio command, the servers in error (with a\n" +
			"suggested fix), Docker when isolation is on, and the servers waiting in quarantine.\n" +
			"Without a running daemon it says so and runs the checks that need none.",
		Args: cobra.NoArgs,
	}
	asJSON := addJSONFlag(cmd)
	cmd.Flags().StringVar(&configPath, "config", "", "config file to check when no daemon runs (default <data-dir>/mcp_config.json)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, cancel := cliContext(cmd)
		defer cancel()
		c := newAPIClient(cmd)
		var rep doctor.Report
		raw, err := c.do(ctx, "GET", "/api/v1/doctor", nil, &rep)
		var nd *errNoDaemon
		switch {
		case errors.As(err, &nd):
			fmt.Fprintf(cmd.ErrOrStderr(), "mcpproxy: no daemon is running (nothing answers on %s); running the checks that need none\n", c.socket)
			rep = localDoctor(ctx, c, configPath)
			if *asJSON {
				err = writeJSON(cmd.OutOrStdout(), rep)
			} else {
				err = printReport(cmd.OutOrStdout(), rep)
			}
		case err != nil:
			return err
		case *asJSON:
			err = printJSON(cmd.OutOrStdout(), raw)
		default:
			err = printReport(cmd.OutOrStdout(), rep)
		}
		if err != nil {
			return err
		}
		if !rep.Healthy {
			return &exitError{code: 1, err: errors.New("")}
		}
		return nil
	}
	return cmd
}

// localDoctor runs the checks without a daemon: the config file as it is on disk, this
// shell's environment and PATH, and the store opened directly for secret references.
func localDoctor(ctx context.Context, c *apiClient, configPath string) doctor.Report {
	if configPath == "" {
		configPath = filepath.Join(c.dataDir, config.FileName)
	}
	in := doctor.Input{
		DaemonNote: fmt.Sprintf("no daemon answers on %s", c.socket),
		ConfigPath: configPath,
		DataDir:    c.dataDir,
		LookupEnv:  os.LookupEnv,
		Docker:     (&upstream.Docker{}).Status,
	}
	cfg, err := config.Load(configPath)
	var ve *config.ValidationError
	switch {
	case err == nil:
		in.Config = cfg
	case errors.As(err, &ve):
		in.ConfigErrors = ve.Errors
	case errors.Is(err, fs.ErrNotExist):
	default:
		in.ConfigErr = err
	}
	closeStore := localSecrets(&in, c.dataDir)
	defer closeStore()
	return doctor.Run(ctx, in)
}

// localSecrets lets the doctor read secrets from the store when it exists; with no store
// there are no secrets, so every reference is missing. It returns the store's closer.
func localSecrets(in *doctor.Input, dataDir string) func() {
	noop := func() {}
	dbDir := filepath.Join(dataDir, "db")
	keyFile := filepath.Join(dataDir, "secrets.key")
	if _, err := os.Stat(dbDir); errors.Is(err, fs.ErrNotExist) {
		in.Secret = func(name string) error { return fmt.Errorf("secret %q: %w", name, store.ErrNotFound) }
		return noop
	}
	if _, err := os.Stat(keyFile); err != nil {
		in.SecretsNote = fmt.Sprintf("the secrets key %s cannot be read: %v", keyFile, err)
		return noop
	}
	st, err := store.Open(dbDir, store.Options{})
	if err != nil {
		in.SecretsNote = fmt.Sprintf("the store cannot be opened: %v", err)
		return noop
	}
	if err := st.OpenSecrets(keyFile); err != nil {
		st.Close()
		in.SecretsNote = fmt.Sprintf("the secrets key cannot be loaded: %v", err)
		return noop
	}
	in.Secret = func(name string) error {
		_, err := st.SecretValue(name)
		return err
	}
	return func() { st.Close() }
}

// printReport writes the report as a table of checks, with fixes under the problems.
func printReport(w io.Writer, rep doctor.Report) error {
	var fails, warns int
	for _, c := range rep.Checks {
		mark := "ok  "
		switch c.Status {
		case doctor.Warn:
			mark = "WARN"
			warns++
		case doctor.Fail:
			mark = "FAIL"
			fails++
		}
		fmt.Fprintf(w, "%s  %-18s %s\n", mark, c.Name, c.Message)
		if c.Fix != "" {
			fmt.Fprintf(w, "      %-18s fix: %s\n", "", c.Fix)
		}
	}
	verdict := "healthy"
	if !rep.Healthy {
		verdict = "unhealthy"
	}
	_, err := fmt.Fprintf(w, "\n%s: %d failed, %d %s\n", verdict, fails, warns, plural(warns, "warning", "warnings"))
	return err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
