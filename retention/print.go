package retention

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Counts sums a plan up: every tag and untagged manifest is in exactly
// one of Delete, Kept (by a rule), Protected and NoRule.
type Counts struct {
	Total, Delete, Kept, Protected, NoRule int
}

// Count sums decisions up.
func Count(decisions []Decision) Counts {
	c := Counts{Total: len(decisions)}
	for _, d := range decisions {
		switch {
		case d.Delete:
			c.Delete++
		case d.Protected:
			c.Protected++
		case d.Rule < 0:
			c.NoRule++
		default:
			c.Kept++
		}
	}
	return c
}

// KeptLine says what was kept and why, e.g. "5 kept by a rule, 2 protected,
// 3 no rule covers".
func (c Counts) KeptLine() string {
	return fmt.Sprintf("%d kept by a rule, %d protected, %d no rule covers", c.Kept, c.Protected, c.NoRule)
}

// Print writes decisions as a table: repository, tag, digest, pushed, last
// pulled, decision and what decided, then a line counting each decision.
// With all false, the tags no rule covers are counted but not listed.
func Print(w io.Writer, decisions []Decision, all bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tTAG\tDIGEST\tPUSHED\tLAST PULLED\tDECISION\tWHY")
	for _, d := range decisions {
		if !all && !d.Delete && !d.Protected && d.Rule < 0 {
			continue
		}
		tag, pulled, verdict := d.Tag.Tag, "never", "keep"
		if tag == "" {
			tag = "<untagged>"
		}
		if !d.Pulled.IsZero() {
			pulled = d.Pulled.UTC().Format(time.RFC3339)
		}
		if d.Delete {
			verdict = "delete"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Repo, tag, d.Digest, d.Pushed.UTC().Format(time.RFC3339), pulled, verdict, d.Why)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	c := Count(decisions)
	line := fmt.Sprintf("%d tags and untagged manifests: %d to delete, %s", c.Total, c.Delete, c.KeptLine())
	if !all && c.NoRule > 0 {
		line += " (not listed; --all lists them)"
	}
	_, err := fmt.Fprintln(w, strings.TrimSpace(line))
	return err
}
