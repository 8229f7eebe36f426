package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/config"
)

// maxSecretBytes bounds a secret value read from stdin (the API's body limit is 1 MiB).
const maxSecretBytes = 512 << 10

var secretNameRE = config.MustNameMatcher(config.RefNamePattern)

// The secrets commands go through the daemon, which restarts the servers that use a changed
// secret. When no daemon runs they open the store in the data dir directly (the store's lock
// keeps a daemon from starting meanwhile), so secrets can be set before the first start.
func newSecretsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Manage the secrets that ${secret:NAME} references in the config resolve to",
	}
	cmd.AddCommand(newSecretsSetCommand(), newSecretsListCommand(), newSecretsDeleteCommand())
	return cmd
}

func checkSecretName(name string) error {
	if !secretNameRE.MatchString(name) {
		return fmt.Errorf("secret name %q must match %s", name, config.RefNamePattern)
	}
	return nil
}

func newSecretsSetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set NAME",
		Short: "Store a secret; the value is read from stdin (never from the command line)",
		Long: "Store a secret under NAME. The value is read from stdin: typed at a hidden prompt on a\n" +
			"terminal, or piped (one trailing newline is dropped), for example\n\n" +
			"  printf %s \"$GITHUB_TOKEN\" | mcpproxy secrets set GITHUB_TOKEN\n\n" +
			"Servers whose config references ${secret:NAME} restart to pick it up.",
		Args: cobra.ExactArgs(1),
	}
	asJSON := addJSONFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		name := args[0]
		if err := checkSecretName(name); err != nil {
			return err
		}
		value, err := readSecretValue(cmd, name)
		if err != nil {
			return err
		}
		ctx, cancel := cliContext(cmd)
		defer cancel()
		c := newAPIClient(cmd)
		var out struct {
			Secret    actors.Secret `json:"secret"`
			Restarted []string      `json:"restarted"`
		}
		raw, err := c.do(ctx, "PUT", "/api/v1/secrets/"+url.PathEscape(name), map[string]string{"value": value}, &out)
		var nd *errNoDaemon
		if errors.As(err, &nd) {
			out.Secret, err = setLocal(c.dataDir, name, value)
			if err == nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "mcpproxy: no daemon is running; stored the secret in", filepath.Join(c.dataDir, "db"))
				if *asJSON {
					return writeJSON(cmd.OutOrStdout(), map[string]any{"secret": out.Secret})
				}
			}
		} else if err == nil && *asJSON {
			return printJSON(cmd.OutOrStdout(), raw)
		}
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "secret %s stored\n", name)
		if len(out.Restarted) > 0 {
			fmt.Fprintf(w, "restarted: %s\n", strings.Join(out.Restarted, ", "))
		}
		if len(out.Secret.UsedBy) == 0 {
			fmt.Fprintf(w, "no server uses it yet: reference it as ${secret:%s} in env, headers, args or url\n", name)
		}
		return nil
	}
	return cmd
}

// readSecretValue reads the value from stdin: at a prompt without echo on a terminal, else
// all of stdin minus one trailing newline.
func readSecretValue(cmd *cobra.Command, name string) (string, error) {
	in := cmd.InOrStdin()
	var value string
	if f, ok := in.(*os.File); ok && isTerminal(f) {
		fmt.Fprintf(cmd.ErrOrStderr(), "Value for %s (not shown): ", name)
		v, err := readHidden(f)
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("reading the value: %w", err)
		}
		value = v
	} else {
		data, err := io.ReadAll(io.LimitReader(in, maxSecretBytes+1))
		if err != nil {
			return "", fmt.Errorf("reading the value from stdin: %w", err)
		}
		if len(data) > maxSecretBytes {
			return "", fmt.Errorf("the value is over %d bytes", maxSecretBytes)
		}
		value = strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	}
	if value == "" {
		return "", fmt.Errorf("empty value: pipe it on stdin, e.g. printf %%s \"$TOKEN\" | mcpproxy secrets set %s", name)
	}
	return value, nil
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// readHidden reads one line from a terminal with echo turned off, restoring the terminal
// afterwards.
func readHidden(f *os.File) (string, error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", err
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return "", err
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func newSecretsListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the secrets' names, the servers that use them and when they changed (never values)",
		Args:    cobra.NoArgs,
	}
	asJSON := addJSONFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, cancel := cliContext(cmd)
		defer cancel()
		c := newAPIClient(cmd)
		var out struct {
			Secrets []actors.Secret `json:"secrets"`
		}
		raw, err := c.do(ctx, "GET", "/api/v1/secrets", nil, &out)
		var nd *errNoDaemon
		if errors.As(err, &nd) {
			if out.Secrets, err = listLocal(c.dataDir); err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"secrets": out.Secrets})
			}
		} else if err != nil {
			return err
		} else if *asJSON {
			return printJSON(cmd.OutOrStdout(), raw)
		}
		w := cmd.OutOrStdout()
		if len(out.Secrets) == 0 {
			_, err := fmt.Fprintln(w, "no secrets")
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tUSED BY\tUPDATED")
		for _, s := range out.Secrets {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, orDash(strings.Join(s.UsedBy, ", ")), s.UpdatedAt.Local().Format(time.DateTime))
		}
		return tw.Flush()
	}
	return cmd
}

func newSecretsDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a secret; servers that use it restart and report it missing",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := checkSecretName(name); err != nil {
				return err
			}
			ctx, cancel := cliContext(cmd)
			defer cancel()
			c := newAPIClient(cmd)
			_, err := c.do(ctx, "DELETE", "/api/v1/secrets/"+url.PathEscape(name), nil, nil)
			var nd *errNoDaemon
			if errors.As(err, &nd) {
				err = withLocalStore(c.dataDir, func(st *store.Store) error { return st.DeleteSecret(name) })
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "secret %s deleted\n", name)
			return err
		},
	}
}

// withLocalStore opens the data dir's store (no daemon holds it) for fn.
func withLocalStore(dataDir string, fn func(*store.Store) error) error {
	st, err := store.Open(filepath.Join(dataDir, "db"), store.Options{})
	if err != nil {
		return fmt.Errorf("no daemon answers and the store cannot be opened: %w", err)
	}
	defer st.Close()
	if err := st.OpenSecrets(filepath.Join(dataDir, "secrets.key")); err != nil {
		return err
	}
	return fn(st)
}

// localUsers maps secret names to the servers of the config file in dataDir that use them.
func localUsers(dataDir string) map[string][]string {
	cfg, err := config.Load(filepath.Join(dataDir, config.FileName))
	if err != nil {
		return map[string][]string{}
	}
	return cfg.SecretUsers()
}

func setLocal(dataDir, name, value string) (actors.Secret, error) {
	var out actors.Secret
	err := withLocalStore(dataDir, func(st *store.Store) error {
		m, err := st.SetSecret(name, value)
		out = actors.NewSecret(m, localUsers(dataDir)[m.Name])
		return err
	})
	return out, err
}

func listLocal(dataDir string) ([]actors.Secret, error) {
	if _, err := os.Stat(filepath.Join(dataDir, "db")); errors.Is(err, os.ErrNotExist) {
		return []actors.Secret{}, nil
	}
	out := []actors.Secret{}
	err := withLocalStore(dataDir, func(st *store.Store) error {
		list, err := st.ListSecrets()
		users := localUsers(dataDir)
		for _, m := range list {
			out = append(out, actors.NewSecret(m, users[m.Name]))
		}
		return err
	})
	return out, err
}
