package cmd

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nora-registry/nora/storage"
)

func newMigrateCmd() *cobra.Command {
	var from, to string
	var workers int
	c := &cobra.Command{
		Use:   "migrate --from OLD.toml --to NEW.toml",
		Short: "Copy every blob from one storage backend to another",
		Long: `Copy every blob from the [storage] of one configuration file to the
[storage] of another: filesystem to S3, S3 to filesystem, one bucket or
prefix to another.

Each blob is verified against its digest before it appears in the
destination. Blobs already there are skipped, so an interrupted run
resumes, and a second run after the first copies only what was pushed in
between. Metadata stays where it is: keep storage.root the same in both
files. Progress is printed every 5 seconds, then a summary; the exit
status is non-zero if any blob failed.

To move a registry: run migrate while the server runs, stop the server,
run migrate again for the blobs pushed meanwhile, then start the server
with the new configuration.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return fmt.Errorf("migrate: --from and --to are both required")
			}
			src, err := loadConfig(from)
			if err != nil {
				return err
			}
			dst, err := loadConfig(to)
			if err != nil {
				return err
			}
			if sameBackend(src.Storage, dst.Storage) {
				return fmt.Errorf("migrate: %s and %s name the same blob store", from, to)
			}
			ctx := cmd.Context()
			fromDrv, err := storage.OpenDriver(ctx, src.Storage)
			if err != nil {
				return fmt.Errorf("%s: %w", from, err)
			}
			toDrv, err := storage.OpenDriver(ctx, dst.Storage)
			if err != nil {
				return fmt.Errorf("%s: %w", to, err)
			}
			out := cmd.OutOrStdout()
			sum, err := storage.Migrate(ctx, fromDrv, toDrv, workers,
				func(p storage.MigrateProgress) { printMigrate(out, "progress", p) },
				func(key string, err error) { fmt.Fprintf(cmd.ErrOrStderr(), "migrate: %s: %v\n", key, err) })
			printMigrate(out, "done", sum)
			if err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			if sum.Failed > 0 {
				return fmt.Errorf("migrate: %d blobs failed; run it again to retry them", sum.Failed)
			}
			return nil
		},
	}
	c.Flags().StringVar(&from, "from", "", "configuration `file` whose [storage] is copied from")
	c.Flags().StringVar(&to, "to", "", "configuration `file` whose [storage] is copied to")
	c.Flags().IntVar(&workers, "workers", 4, "blobs copied at once")
	return c
}

func printMigrate(w io.Writer, what string, p storage.MigrateProgress) {
	done := p.Copied + p.Skipped + p.Failed
	fmt.Fprintf(w, "migrate %s: %d/%d blobs (%s of %s); %d copied, %d already there, %d failed; %s\n",
		what, done, p.Blobs, mib(p.CopiedBytes), mib(p.Bytes), p.Copied, p.Skipped, p.Failed, p.Elapsed.Round(100*time.Millisecond))
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// sameBackend reports whether a and b store blobs in the same place.
func sameBackend(a, b storage.Config) bool {
	if a.Driver != b.Driver {
		return false
	}
	if a.Driver == "filesystem" {
		ra, erra := os.Stat(a.Root)
		rb, errb := os.Stat(b.Root)
		return erra == nil && errb == nil && os.SameFile(ra, rb)
	}
	return a.S3.Endpoint == b.S3.Endpoint && a.S3.Bucket == b.S3.Bucket &&
		strings.Trim(a.S3.Prefix, "/") == strings.Trim(b.S3.Prefix, "/")
}
