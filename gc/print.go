package gc

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
)

// Size formats n bytes for people ("1.4 GiB"), or as a plain number of
// bytes for scripts when raw.
func Size(n int64, raw bool) string {
	if raw {
		return strconv.FormatInt(n, 10)
	}
	if n < 0 {
		return "-" + humanize.IBytes(uint64(-n))
	}
	return humanize.IBytes(uint64(n))
}

// sizeWord is Size with the unit spelt out for raw bytes: "123 bytes".
func sizeWord(n int64, raw bool) string {
	if raw {
		return strconv.FormatInt(n, 10) + " bytes"
	}
	return Size(n, false)
}

// CollectableBy is when a pass frees what only the grace period keeps
// now, if nothing changes meanwhile: the plan's clock plus the grace
// period.
func (p *PassPlan) CollectableBy() time.Time { return p.Now.Add(p.Now.Sub(p.Cutoff)) }

// Print writes p as a table: kind, repository, digest or key, size and
// reason, then the bytes it would free and those waiting for the grace
// period. Sizes are in binary units, or in bytes when raw.
func (p *PassPlan) Print(w io.Writer, raw bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tREPOSITORY\tDIGEST/KEY\tSIZE\tREASON")
	for _, it := range p.Items {
		name := string(it.Digest)
		if name == "" {
			name = it.Key
		}
		repo := it.Repo
		if repo == "" {
			repo = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.Kind, repo, name, Size(it.Size, raw), it.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "%d items, %s to free\n", len(p.Items), sizeWord(p.Bytes, raw)); err != nil {
		return err
	}
	return printWaiting(w, p.WaitingBytes, p.Waiting, p.CollectableBy(), raw)
}

// Print writes r as a summary line, then what waits for the grace period.
func (r Result) Print(w io.Writer, raw bool) error {
	// The same words whatever the counts, for scripts that read them.
	_, err := fmt.Fprintf(w, "deleted %d manifests, %d blob links, %d blobs, %d uploads, %d unknown files; freed %s; %d planned items no longer qualified; %d failed\n",
		r.Manifests, r.Links, r.Blobs, r.Uploads, r.Files, sizeWord(r.Bytes, raw), r.Skipped, r.Failed)
	if err != nil {
		return err
	}
	return printWaiting(w, r.WaitingBytes, 0, r.CollectableBy, raw)
}

// printWaiting says how much the grace period alone keeps, of which files
// unknown files, and when it becomes collectable; nothing if none.
func printWaiting(w io.Writer, bytes int64, files int, by time.Time, raw bool) error {
	if bytes == 0 && files == 0 {
		return nil
	}
	var of string
	if files > 0 {
		of = fmt.Sprintf(" (%d unknown files among it)", files)
	}
	_, err := fmt.Fprintf(w, "%s waiting for the grace period%s, collectable by %s\n", sizeWord(bytes, raw), of, by.UTC().Format(time.RFC3339))
	return err
}
