package replicate

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// PrintPlan writes what Apply would do with items, one line each, and
// the totals. Items of one target repository that share a blob each
// count it, as each would send it if the other failed; the total counts
// it once.
func PrintPlan(w io.Writer, items []*Item) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tTARGET\tTAG\tPLAN\tBYTES")
	var n int
	var bytes int64
	counted := map[string]bool{}
	for _, it := range items {
		plan := "up to date"
		switch {
		case it.Err != nil:
			plan = "fails: " + oneLine(it.Err)
		case !it.UpToDate():
			plan = fmt.Sprintf("copy %d manifests, %d blobs", len(it.Manifests), len(it.Blobs))
			n++
			for _, m := range it.Manifests {
				bytes += int64(len(m.Raw))
			}
			for _, b := range it.Blobs {
				if key := it.Target + "@" + b.Digest.String(); !counted[key] {
					counted[key] = true
					bytes += b.Size
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", it.Repo, it.Target, tagOf(it), plan, it.Bytes())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "dry run: %d of %d items to copy, at most %d bytes; nothing copied\n", n, len(items), bytes)
	return err
}

// PrintResults writes the summary table of a copy.
func PrintResults(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tTARGET\tTAG\tRESULT\tBYTES")
	counts := map[Status]int{}
	var bytes int64
	for _, r := range results {
		res := string(r.Status)
		if r.Err != nil {
			res += ": " + oneLine(r.Err)
		}
		counts[r.Status]++
		bytes += r.Bytes
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", r.Item.Repo, r.Item.Target, tagOf(r.Item), res, r.Bytes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d copied, %d up to date, %d failed; %d bytes sent\n", counts[Copied], counts[UpToDate], counts[Failed], bytes)
	return err
}

// Failures is nil when every result succeeded, else an error naming each
// failed item and its reason.
func Failures(results []Result) error {
	var lines []string
	for _, r := range results {
		if r.Status == Failed {
			lines = append(lines, fmt.Sprintf("%s: %s", itemName(r.Item), oneLine(r.Err)))
		}
	}
	if len(lines) == 0 {
		return nil
	}
	return errors.New(fmt.Sprintf("%d of %d items failed:\n  ", len(lines), len(results)) + strings.Join(lines, "\n  "))
}

func itemName(it *Item) string {
	if it.Tag == "" {
		return it.Repo
	}
	return it.Repo + ":" + it.Tag
}

func tagOf(it *Item) string {
	if it.Tag == "" {
		return "-"
	}
	return it.Tag
}

func oneLine(err error) string {
	if err == nil {
		return ""
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}
