package cmd

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/nora-registry/nora/gc"
	"github.com/nora-registry/nora/storage"
)

func newCompactCmd() *cobra.Command {
	var configPath string
	var raw bool
	c := &cobra.Command{
		Use:   "compact",
		Short: "Rewrite the metadata file in key order, smaller",
		Long: `Rewrite the metadata file (metadata.db) in key order into a new file, and
put that in its place: the same records in pages 90% full, and the free pages
deletions left given back to the disk. It prints the file's size before and
after, and how long writes waited for it.

The server does this on its own when it would shrink the file's pages by a
fifth or more (looked at after each GC pass, and as the file grows); this
command does it now, for example after a large deletion.

It works whether or not the server runs: when a server holds the data
directory, the compaction runs inside it, through the admin socket, while
it keeps serving. Without a server it opens the store where storage.root
points, and never creates one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			rep := cliReport(cmd, raw, false)
			return withMaintenance(cmd.Context(), f, configPath, "", "/compact?"+rep.query(), cmd.OutOrStdout(), cmd.ErrOrStderr(), func(m *maintenance) error {
				return m.compact(cmd.Context(), rep)
			})
		},
	}
	c.Flags().StringVarP(&configPath, "config", "c", os.Getenv("NORA_CONFIG"), "configuration `file` (default: $NORA_CONFIG, else built-in defaults)")
	c.Flags().BoolVar(&raw, "bytes", false, "print sizes as numbers of bytes, for scripts")
	return c
}

// compact compacts the metadata file now, and says how it went.
func (m *maintenance) compact(ctx context.Context, rep report) error {
	res, err := m.store.Compact(ctx)
	logCompaction(m.log, res, err)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(rep.out, "metadata.db: %s -> %s in %s; writes waited %s\n", gc.Size(res.Before, rep.raw),
		gc.Size(res.After, rep.raw), res.Took.Round(time.Millisecond), res.Held.Round(100*time.Microsecond))
	return err
}

// logCompaction logs a compaction of the metadata file, by the server
// on its own or asked for.
func logCompaction(log zerolog.Logger, res storage.CompactResult, err error) {
	if err != nil {
		log.Warn().Err(err).Msg("compacting the metadata file")
		return
	}
	log.Info().Int64("before_bytes", res.Before).Int64("after_bytes", res.After).Int64("duration_ms", res.Took.Milliseconds()).
		Float64("writes_held_ms", float64(res.Held.Microseconds())/1000).Msg("compacted the metadata file")
}
