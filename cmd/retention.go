package cmd

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func newRetentionCmd() *cobra.Command {
	var configPath string
	var dryRun, all bool
	c := &cobra.Command{
		Use:   "retention",
		Short: "Delete tags by the [[retention.rules]] of nora.toml",
		Long: `Plan the [[retention.rules]] of nora.toml against every tag, then delete
the tags the plan marks (see README, "Retention").

With --dry-run it prints the plan (repository, tag, digest, pushed, last
pulled, decision and the rule that decided, or "protected") and deletes
nothing; its last line counts the tags to delete, kept by a rule,
protected, and those no rule covers, which only --all lists. Deleted tags
free space at the next GC pass.

Like gc, it works whether or not the server runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			if f.Retention == nil || len(f.Retention.Rules) == 0 {
				return fmt.Errorf("no [[retention.rules]] in %s: nothing to do", orDefault(configPath))
			}
			rep := cliReport(cmd, false, all)
			q := fmt.Sprintf("/retention?dry_run=%t%s", dryRun, rep.query())
			return withMaintenance(cmd.Context(), f, configPath, maintSections, q, cmd.OutOrStdout(), cmd.ErrOrStderr(), func(m *maintenance) error {
				return m.retention(cmd.Context(), byCLI, dryRun, rep)
			})
		},
	}
	c.Flags().StringVarP(&configPath, "config", "c", os.Getenv("NORA_CONFIG"), "configuration `file` (default: $NORA_CONFIG, else built-in defaults)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, delete nothing")
	c.Flags().BoolVar(&all, "all", false, "with --dry-run, list the tags no rule covers too")
	return c
}

func orDefault(path string) string {
	if path == "" {
		return "the built-in configuration"
	}
	return path
}
