package cmd

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func newConfigCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "Work with configuration files",
		Args:  cobra.NoArgs,
	}
	c.AddCommand(newConfigCheckCmd())
	return c
}

func newConfigCheckCmd() *cobra.Command {
	var configPath string
	c := &cobra.Command{
		Use:   "check [FILE]",
		Short: "Check a configuration file: syntax, unknown keys, types, variables, values and named files",
		Long: `Check a configuration file and report every problem in it, each naming
its key: syntax, unknown keys (with the nearest known one), values of the
wrong type, unset ${VARIABLES}, invalid values, and files it names (TLS
certificate and key, htpasswd, CA files) that cannot be read. A syntax
error stops the check at that line.

The file is FILE, else --config, else $NORA_CONFIG.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := configPath
			if len(args) == 1 {
				path = args[0]
			}
			if path == "" {
				return errors.New("config check: no file: pass FILE or --config, or set NORA_CONFIG")
			}
			f, err := LoadFile(path)
			if err != nil {
				return err
			}
			// Warnings name what is valid but likely a mistake; they
			// don't fail the check.
			if f.Auth != nil {
				for _, w := range f.Auth.Warnings() {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: warning: %s\n", path, w)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", path)
			return nil
		},
	}
	c.Flags().StringVarP(&configPath, "config", "c", os.Getenv("NORA_CONFIG"), "configuration `file` (default: $NORA_CONFIG)")
	return c
}
