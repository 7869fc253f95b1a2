package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/replicate"
)

func newReplicateStatusCmd() *cobra.Command {
	var configPath string
	var asJSON bool
	c := &cobra.Command{
		Use:   "status",
		Short: "Show the continuous replication of each push target and pull source",
		Long: `Show, for each [[replicate.push]] target and [[replicate.pull]] source, the
last run and the last success, the events queued and the age of the oldest
(lag), what was copied since the server started, and the last error.

It asks the running server through the admin socket in the data directory.
With no server running, it reads the push targets' queues from the store;
the rest is known only to a running server.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			sts, err := replicationStatus(cmd.Context(), f, configPath, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(sts)
			}
			return printStatus(cmd.OutOrStdout(), sts, time.Now())
		},
	}
	c.Flags().StringVarP(&configPath, "config", "c", os.Getenv("NORA_CONFIG"), "configuration `file` of this registry (default: $NORA_CONFIG, else built-in defaults)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// replicationStatus asks the running server, or reads the queues of f's
// push targets from the store when none runs.
func replicationStatus(ctx context.Context, f File, configPath string, say io.Writer) ([]replicate.RemoteStatus, error) {
	sock := filepath.Join(f.Storage.Root, auth.AdminSocket)
	if conn, err := (&net.Dialer{}).DialContext(ctx, "unix", sock); err == nil {
		conn.Close()
		fmt.Fprintf(say, "using the running server on %s\n", absPath(sock))
		client := &http.Client{Transport: socketEndpoint(sock).Transport}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://nora/replicate/status", nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("server admin socket: %s", resp.Status)
		}
		var sts []replicate.RemoteStatus
		if err := json.NewDecoder(resp.Body).Decode(&sts); err != nil {
			return nil, fmt.Errorf("server admin socket: %v", err)
		}
		return sts, nil
	}
	store, err := openOffline(ctx, f, configPath, say)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	var sts []replicate.RemoteStatus
	for _, p := range f.Replicate.Push {
		st := replicate.RemoteStatus{Name: p.Name, Kind: "push", URL: p.URL}
		st.Queued, st.Lag = replicate.QueueOf(store, p.Name)
		sts = append(sts, st)
	}
	for _, p := range f.Replicate.Pull {
		sts = append(sts, replicate.RemoteStatus{Name: p.Name, Kind: "pull", URL: p.URL})
	}
	return sts, nil
}

// printStatus writes one line per remote.
func printStatus(w io.Writer, sts []replicate.RemoteStatus, now time.Time) error {
	if len(sts) == 0 {
		_, err := fmt.Fprintln(w, "no [[replicate.push]] target or [[replicate.pull]] source configured")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tURL\tLAST RUN\tLAST SUCCESS\tQUEUED\tLAG\tCOPIED\tBYTES\tLAST ERROR")
	for _, s := range sts {
		queued, lag := "-", "-"
		if s.Kind == "push" {
			queued, lag = fmt.Sprint(s.Queued), s.Lag.Round(time.Second).String()
		}
		lastErr := "-"
		if s.LastError != "" {
			lastErr = ago(now, s.LastErrorAt) + ": " + s.LastError
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", s.Name, s.Kind, s.URL, ago(now, s.LastRun), ago(now, s.LastSuccess), queued, lag, s.Items, s.Bytes, lastErr)
	}
	return tw.Flush()
}

// ago is how long before now t was, "-" for never.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}
