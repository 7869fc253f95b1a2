package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/storage"
)

func newTokenCmd() *cobra.Command {
	var configPath string
	c := &cobra.Command{
		Use:   "token",
		Short: "Manage robot tokens (for CI and other machines)",
		Long: `Create, list and revoke robot tokens. A robot token is the password
for any user name (docker login -u ci -p <token>); only its hash is stored.

The commands work whether or not the server runs: they talk to a running
server over the admin socket in the data directory, else open the store.`,
	}
	c.PersistentFlags().StringVarP(&configPath, "config", "c", os.Getenv("NORA_CONFIG"), "configuration `file` (default: $NORA_CONFIG, else built-in defaults)")
	c.AddCommand(newTokenCreateCmd(&configPath), newTokenListCmd(&configPath), newTokenRevokeCmd(&configPath))
	return c
}

func newTokenCreateCmd(configPath *string) *cobra.Command {
	var (
		name    string
		perms   []string
		expires string
	)
	c := &cobra.Command{
		Use:   "create --name NAME --permissions PERM... [--expires 90d]",
		Short: "Create a robot token and print it, once",
		Example: `  registry token create --name ci-bot --permissions 'push:team-a/**' --expires 90d
  registry token create --name mirror --permissions 'pull:**,!pull:secret/**' --expires never`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ttl, err := parseExpires(expires)
			if err != nil {
				return fmt.Errorf("--expires: %w", err)
			}
			return withRobotAdmin(cmd.Context(), *configPath, cmd.ErrOrStderr(), func(a auth.RobotAdmin) error {
				token, err := a.Create(cmd.Context(), name, splitPermissions(perms), ttl)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), token)
				fmt.Fprintf(cmd.ErrOrStderr(), "robot token %q created; it is shown only now.\n", name)
				return nil
			})
		},
	}
	c.Flags().StringVar(&name, "name", "", "robot name (a-z, 0-9, '.', '_', '-')")
	c.Flags().StringArrayVar(&perms, "permissions", nil, "permission strings action:repository-glob, comma separated or repeated")
	c.Flags().StringVar(&expires, "expires", "90d", "lifetime: 90d, 12h, 30m, or never")
	c.MarkFlagRequired("name")
	return c
}

func newTokenListCmd(configPath *string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List robot tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withRobotAdmin(cmd.Context(), *configPath, cmd.ErrOrStderr(), func(a auth.RobotAdmin) error {
				list, err := a.List(cmd.Context())
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tPERMISSIONS\tCREATED\tEXPIRES")
				for _, r := range list {
					exp := "never"
					if !r.Expires.IsZero() {
						exp = r.Expires.Format(time.RFC3339)
						if !time.Now().Before(r.Expires) {
							exp += " (expired)"
						}
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.Name, strings.Join(r.Permissions, ","), r.Created.Format(time.RFC3339), exp)
				}
				return w.Flush()
			})
		},
	}
}

func newTokenRevokeCmd(configPath *string) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a robot token: it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRobotAdmin(cmd.Context(), *configPath, cmd.ErrOrStderr(), func(a auth.RobotAdmin) error {
				if err := a.Revoke(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "robot token %q revoked.\n", args[0])
				return nil
			})
		},
	}
}

// withRobotAdmin runs fn against the running server's admin socket, or
// against the existing store opened directly when no server runs, and
// says on say which.
func withRobotAdmin(ctx context.Context, configPath string, say io.Writer, fn func(auth.RobotAdmin) error) error {
	f, err := loadConfig(configPath)
	if err != nil {
		return err
	}
	sock := filepath.Join(f.Storage.Root, auth.AdminSocket)
	if c, err := auth.DialAdmin(sock); err == nil {
		fmt.Fprintf(say, "using the running server on %s\n", absPath(sock))
		return fn(c)
	}
	store, err := openOffline(ctx, f, configPath, say)
	if err != nil {
		return err
	}
	return errors.Join(fn(auth.NewRobots(store)), store.Close())
}

// parseExpires reads a lifetime: a Go duration, a number of days ("90d"),
// or "never" (0).
func parseExpires(s string) (time.Duration, error) {
	if s == "never" {
		return 0, nil
	}
	d, err := storage.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want 90d, 12h, 30m or never", s)
	}
	return d, nil
}

// splitPermissions splits comma-separated permission strings, keeping
// commas inside glob alternatives such as pull:{a,b}/**.
func splitPermissions(values []string) []string {
	var out []string
	for _, v := range values {
		depth, start := 0, 0
		for i, r := range v {
			switch {
			case r == '{':
				depth++
			case r == '}' && depth > 0:
				depth--
			case r == ',' && depth == 0:
				out = appendTrimmed(out, v[start:i])
				start = i + 1
			}
		}
		out = appendTrimmed(out, v[start:])
	}
	return out
}

func appendTrimmed(out []string, s string) []string {
	if s = strings.TrimSpace(s); s != "" {
		out = append(out, s)
	}
	return out
}
