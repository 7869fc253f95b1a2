package cmd

import (
	"github.com/spf13/cobra"
)

// NewRoot returns the registry command with all its subcommands. Errors are
// returned, not printed: the caller prints them once.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "registry",
		Short: "nora: a small, complete OCI container registry",
		Long: `nora is a complete OCI registry in one binary, configured by one TOML
file (see nora.toml.example).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Suggestions span several lines; errors here are one line.
		DisableSuggestions: true,
	}
	root.AddCommand(
		newServeCmd(),
		newReloadCmd(),
		newConfigCmd(),
		newVersionCmd(),
		newUserCmd(),
		newTokenCmd(),
		newGCCmd(),
		newRetentionCmd(),
		newCompactCmd(),
		newMigrateCmd(),
		newReplicateCmd(),
	)
	return root
}
