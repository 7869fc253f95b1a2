package cmd

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
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
files. Progress, by blobs and by bytes, is printed every 5 seconds until
the last blob is copied, then a summary that tells the blobs copied from
those already there; the exit status is non-zero if any blob failed.

To move a registry: run migrate while the server runs, stop the server,
run migrate again for the blobs pushed meanwhile, then start the server
with the new configuration. The old blobs stay where they were: see the
README ("Moving between backends") for removing them safely.`,
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
				func(p storage.MigrateProgress) { printMigrateProgress(out, p) },
				func(key string, err error) { fmt.Fprintf(cmd.ErrOrStderr(), "migrate: %s: %v\n", key, err) })
			printMigrateDone(out, sum)
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

// printMigrateProgress says how far a migration is, by blobs and by bytes:
// those already there, and those read so far, of blobs still copying too.
func printMigrateProgress(w io.Writer, p storage.MigrateProgress) {
	done, bytes := p.Copied+p.Skipped+p.Failed, p.SkippedBytes+p.Read
	pct := 100
	if p.Bytes > 0 {
		pct = int(bytes * 100 / p.Bytes)
	}
	fmt.Fprintf(w, "migrate progress: %d/%d blobs, %s of %s (%d%%); %d copied, %d already there, %d failed; %s\n",
		done, p.Blobs, humanize.IBytes(uint64(bytes)), humanize.IBytes(uint64(p.Bytes)), pct, p.Copied, p.Skipped, p.Failed, p.Elapsed.Round(time.Second))
}

// printMigrateDone sums a migration up, telling what it copied from what
// was already there.
func printMigrateDone(w io.Writer, p storage.MigrateProgress) {
	fmt.Fprintf(w, "migrate done: %d blobs, %s: %d copied (%s), %d already there (%s), %d failed; %s\n",
		p.Blobs, humanize.IBytes(uint64(p.Bytes)), p.Copied, humanize.IBytes(uint64(p.CopiedBytes)),
		p.Skipped, humanize.IBytes(uint64(p.SkippedBytes)), p.Failed, p.Elapsed.Round(100*time.Millisecond))
}

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
