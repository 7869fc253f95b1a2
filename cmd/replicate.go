package cmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/replicate"
)

type replicateFlags struct {
	configPath, to, from, prefix, username string
	tags, platforms                        []string
	dryRun, passwordStdin                  bool
	jobs                                   int
}

func newReplicateCmd() *cobra.Command {
	var fl replicateFlags
	c := &cobra.Command{
		Use:   "replicate (--to URL [REPO-GLOB...] | --from URL/REPO-GLOB)",
		Short: "Copy repositories to or from another registry, once",
		Long: `Copy repositories between this registry and another OCI registry.

--to URL pushes this registry's repositories that match REPO-GLOB (all
when none is given) to the registry at URL. --from URL/REPO-GLOB pulls the
repositories of URL that match REPO-GLOB into this registry; a glob needs
the remote's catalog API, a plain repository name does not. Globs are
those of RBAC rules: * stays within a path segment, ** crosses them.
--tags limits the tags copied; --to-prefix puts the copies under a prefix.
--platform copies only the chosen platforms of each index: the index
itself is copied unchanged, so its tag and digest pull as on the source,
and a pull of a platform left out gets MANIFEST_UNKNOWN. This registry
accepts such an index from replication only; another registry may refuse
it, and the item then fails with its answer.

A copy keeps every digest: manifests, indexes with all their children,
blobs and referrers (OCI 1.1 referrers and cosign's sha256-<hex> tags) go
as they are. Only what the target lacks moves: each manifest and blob is
checked first, and a blob an earlier item of the run put on the target is
mounted rather than sent again. --dry-run prints that plan and copies
nothing.

` + "`registry replicate status`" + ` shows the continuous replication that
[[replicate.push]] and [[replicate.pull]] in nora.toml run in the server.

This registry is read and written through the running server's admin
socket in the data directory when a server runs, and from its store
when none does. The remote uses --username with --password-stdin (a
robot token works as the password), else the docker config.json
credentials for its host.

The summary table ends the output; the command fails, naming each item
that failed and why, if any item could not be copied.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReplicate(cmd, fl, args)
		},
	}
	fs := c.Flags()
	fs.StringVarP(&fl.configPath, "config", "c", os.Getenv("NORA_CONFIG"), "configuration `file` of this registry (default: $NORA_CONFIG, else built-in defaults)")
	fs.StringVar(&fl.to, "to", "", "push to the registry at `URL` ([http://|https://]host[:port])")
	fs.StringVar(&fl.from, "from", "", "pull `URL/REPO-GLOB` into this registry")
	fs.StringArrayVar(&fl.tags, "tags", nil, "copy only tags matching `GLOB` (repeatable; default: every tag)")
	fs.StringVar(&fl.prefix, "to-prefix", "", "put copies under repository `prefix` P on the target")
	fs.BoolVar(&fl.dryRun, "dry-run", false, "print what would be copied and its bytes, copy nothing")
	fs.StringVar(&fl.username, "username", "", "user name on the remote (with --password-stdin)")
	fs.BoolVar(&fl.passwordStdin, "password-stdin", false, "read the remote's password or token from standard input")
	fs.IntVar(&fl.jobs, "jobs", 4, "blobs copied at once")
	fs.StringArrayVar(&fl.platforms, "platform", nil, "copy only platform `os/arch[/variant]` of each index, keeping the index as it is (repeatable; default: every platform)")
	c.AddCommand(newReplicateStatusCmd())
	return c
}

func runReplicate(cmd *cobra.Command, fl replicateFlags, args []string) error {
	ctx := cmd.Context()
	out, say := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if (fl.to == "") == (fl.from == "") {
		return errors.New("give exactly one of --to URL or --from URL/REPO-GLOB")
	}
	if fl.jobs < 1 {
		return fmt.Errorf("--jobs %d: want at least 1", fl.jobs)
	}
	if fl.prefix != "" {
		if _, err := name.NewRepository("localhost/"+fl.prefix, name.StrictValidation); err != nil {
			return fmt.Errorf("--to-prefix %q: not a repository name", fl.prefix)
		}
	}
	remoteArg, repos := fl.to, args
	if fl.from != "" {
		if len(args) > 0 {
			return errors.New("--from takes the repositories in its URL (URL/REPO-GLOB), not as arguments")
		}
		remoteArg = fl.from
	}
	reg, path, err := replicate.ParseRemote(remoteArg)
	if err != nil {
		return err
	}
	switch {
	case fl.to != "" && path != "":
		return fmt.Errorf("--to %q: give the registry only; put copies under a path with --to-prefix %s", fl.to, path)
	case fl.from != "" && path == "":
		return fmt.Errorf("--from %q: name a repository or glob after the host, e.g. %s/team/**", fl.from, fl.from)
	case fl.from != "":
		repos = []string{path}
	}
	sel, err := replicate.NewSelection(repos, fl.tags)
	if err != nil {
		return err
	}
	var platforms []v1.Platform
	for _, p := range fl.platforms {
		pl, err := replicate.ParsePlatform(p)
		if err != nil {
			return fmt.Errorf("--platform: %w", err)
		}
		platforms = append(platforms, pl)
	}
	remote := replicate.Endpoint{Registry: reg}
	if remote.Auth, err = remoteAuth(fl, cmd.InOrStdin()); err != nil {
		return err
	}
	f, err := loadConfig(fl.configPath)
	if err != nil {
		return err
	}
	local, closeLocal, err := openLocal(ctx, f, fl.configPath, say)
	if err != nil {
		return err
	}
	defer closeLocal()
	job := replicate.Job{From: local, To: remote, Select: sel, Prefix: fl.prefix, Jobs: fl.jobs, Platforms: platforms}
	if fl.from != "" {
		job.From, job.To = remote, local
	}
	items, err := replicate.Plan(ctx, job)
	if err != nil {
		return err
	}
	if fl.dryRun {
		if err := replicate.PrintPlan(out, items); err != nil {
			return err
		}
		return planFailures(items)
	}
	results := applyWithProgress(ctx, job, items, say)
	if err := replicate.PrintResults(out, results); err != nil {
		return err
	}
	return replicate.Failures(results)
}

// planFailures names the items a dry run already knows would fail.
func planFailures(items []*replicate.Item) error {
	var rs []replicate.Result
	for _, it := range items {
		st := replicate.Copied
		if it.Err != nil {
			st = replicate.Failed
		}
		rs = append(rs, replicate.Result{Item: it, Status: st, Err: it.Err})
	}
	return replicate.Failures(rs)
}

// applyWithProgress copies with bars when say is a terminal of known
// size, else with a log line per blob and item.
func applyWithProgress(ctx context.Context, job replicate.Job, items []*replicate.Item, say io.Writer) []replicate.Result {
	if replicate.CanDraw(say) {
		var total int64
		for _, it := range items {
			for _, b := range it.Blobs {
				total += b.Size
			}
		}
		bars := replicate.NewBars(say, total)
		results := replicate.Apply(ctx, job, items, bars)
		bars.Wait()
		return results
	}
	return replicate.Apply(ctx, job, items, replicate.NewLines(say))
}

// remoteAuth is --username with the password read from in, or nil: the
// docker config's credentials.
func remoteAuth(fl replicateFlags, in io.Reader) (authn.Authenticator, error) {
	switch {
	case fl.passwordStdin && fl.username == "":
		return nil, errors.New("--password-stdin needs --username")
	case fl.username != "" && !fl.passwordStdin:
		return nil, errors.New("--username needs --password-stdin: a password on the command line would show in the process list")
	case fl.username == "":
		return nil, nil
	}
	pw, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading the password from standard input: %v", err)
	}
	pw = strings.TrimRight(pw, "\r\n")
	if pw == "" {
		return nil, errors.New("--password-stdin: standard input held no password")
	}
	return &authn.Basic{Username: fl.username, Password: pw}, nil
}

// openLocal returns this registry as a replication endpoint: the running
// server's registry API on its admin socket, or, when no server runs, the
// store served on a private socket for the command's lifetime. Either
// way replication reads and writes it as any other registry, with the
// rights of the data directory's owner.
func openLocal(ctx context.Context, f File, configPath string, say io.Writer) (replicate.Endpoint, func(), error) {
	sock := filepath.Join(f.Storage.Root, auth.AdminSocket)
	if conn, err := (&net.Dialer{}).DialContext(ctx, "unix", sock); err == nil {
		conn.Close()
		fmt.Fprintf(say, "using the running server on %s\n", absPath(sock))
		return socketEndpoint(sock), func() {}, nil
	}
	store, err := openOffline(ctx, f, configPath, say)
	if err != nil {
		return replicate.Endpoint{}, nil, err
	}
	dir, err := os.MkdirTemp("", "nora-replicate-")
	if err != nil {
		store.Close()
		return replicate.Endpoint{}, nil, err
	}
	sock = filepath.Join(dir, "registry.sock")
	ln, err := auth.ListenAdmin(sock)
	if err != nil {
		store.Close()
		os.RemoveAll(dir)
		return replicate.Endpoint{}, nil, err
	}
	srv := &http.Server{Handler: registry.New(store, registry.WithPartialIndexes())}
	go srv.Serve(ln)
	return socketEndpoint(sock), func() {
		srv.Close()
		store.Close()
		os.RemoveAll(dir)
	}, nil
}

// socketEndpoint is the registry API served on the unix socket sock.
func socketEndpoint(sock string) replicate.Endpoint {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}
	reg, _ := name.NewRegistry("localhost", name.Insecure)
	return replicate.Endpoint{Registry: reg, Transport: tr, Auth: authn.Anonymous}
}
