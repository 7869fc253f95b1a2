package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/gc"
	"github.com/nora-registry/nora/retention"
	"github.com/nora-registry/nora/storage"
)

func newGCCmd() *cobra.Command {
	var configPath string
	var dryRun, deleteUntagged, raw bool
	var pace float64
	c := &cobra.Command{
		Use:   "gc",
		Short: "Delete blobs, manifests, uploads and files nothing references",
		Long: `Run one garbage collection pass (see [gc] in nora.toml.example).

With --dry-run it prints what it would delete (kind, repository, digest or
key, size, reason) and the bytes it would free, and deletes nothing.
Otherwise it deletes and prints a summary. Both say how much only the
grace period keeps, and when a pass can free it. Sizes are in binary units
(1.4 GiB), or in bytes with --bytes. On a terminal, a pass that lasts more
than a few seconds shows a progress line.

It works whether or not the server runs: when a server holds the data
directory, the pass runs inside it, through the admin socket in the data
directory, and if that server goes away during the pass, gc stops with an
error rather than run on its own. Without a server it opens the store
where storage.root points, and never creates one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("delete-untagged") {
				f.GC.DeleteUntagged = deleteUntagged
			}
			if pace < 0 || pace > 1 {
				return fmt.Errorf("--pace %v: want a share of time above 0 and at most 1", pace)
			}
			rep := cliReport(cmd, raw, false)
			q := fmt.Sprintf("/gc?dry_run=%t&delete_untagged=%t&pace=%v%s", dryRun, f.GC.DeleteUntagged, pace, rep.query())
			return withMaintenance(cmd.Context(), f, configPath, maintSections, q, cmd.OutOrStdout(), cmd.ErrOrStderr(), func(m *maintenance) error {
				return m.gc(cmd.Context(), byCLI, dryRun, f.GC.DeleteUntagged, pace, rep)
			})
		},
	}
	c.Flags().StringVarP(&configPath, "config", "c", os.Getenv("NORA_CONFIG"), "configuration `file` (default: $NORA_CONFIG, else built-in defaults)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be deleted, delete nothing")
	c.Flags().BoolVar(&deleteUntagged, "delete-untagged", false, "also delete manifests no tag, index or subject keeps (default: gc.delete_untagged)")
	c.Flags().BoolVar(&raw, "bytes", false, "print sizes as numbers of bytes, for scripts")
	c.Flags().Float64Var(&pace, "pace", 0, "share of time the pass works, pausing the rest (default: gc.pace in a running server, 1 without one)")
	return c
}

// maintenance runs retention and GC one at a time, whether started by the
// scheduler, the CLI or the admin socket.
type maintenance struct {
	mu    sync.Mutex
	store *storage.Store
	// settings are swapped by a reload; a pass keeps those it started
	// with.
	settings atomic.Pointer[maintenanceSettings]
	// wake tells the scheduler that a reload changed its interval.
	wake    chan struct{}
	metrics *gc.Metrics
	deleted *retention.Metrics
	log     zerolog.Logger
	// afterGC, if set, runs after each GC pass that deletes: the
	// mirror's cache measure and eviction.
	afterGC func(context.Context) error
	// reclaim is what GC could free, for the dashboard.
	reclaim reclaimMeter
	// next is when schedule runs next, in Unix nanoseconds; 0 without one.
	next atomic.Int64
}

func newMaintenance(f File, store *storage.Store, reg prometheus.Registerer, log zerolog.Logger) (*maintenance, error) {
	s, err := newMaintenanceSettings(f)
	if err != nil {
		return nil, err
	}
	m := &maintenance{store: store, wake: make(chan struct{}, 1), metrics: gc.NewMetrics(reg), deleted: retention.NewMetrics(reg), log: log}
	m.settings.Store(s)
	return m, nil
}

// gc runs one pass, or plans one when dryRun. pace overrides gc.pace
// unless it is 0. by says who asked, for the record of passes.
func (m *maintenance) gc(ctx context.Context, by string, dryRun, deleteUntagged bool, pace float64, rep report) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	opts := m.settings.Load().gc.Options()
	opts.DeleteUntagged = deleteUntagged
	if pace > 0 {
		opts.Pace = pace
	}
	if rep.live != nil {
		opts.Progress = &gc.Progress{}
	}
	stop := showProgress(rep.live, func() string { return opts.Progress.Line(rep.raw) }, progressAfter, progressEvery)
	if !dryRun {
		started := time.Now()
		res, err := gc.Run(ctx, m.store, opts, m.metrics, m.log)
		stop()
		if m.afterGC != nil {
			err = errors.Join(err, m.afterGC(ctx))
		}
		m.recordPass(gcPass(by, started, res, err))
		return errors.Join(err, res.Print(rep.out, rep.raw))
	}
	p, err := gc.Plan(ctx, m.store, opts)
	stop()
	if err != nil {
		return err
	}
	return p.Print(rep.out, rep.raw)
}

func (m *maintenance) retention(ctx context.Context, by string, dryRun bool, rep report) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	var progress *retention.Progress
	if rep.live != nil {
		progress = &retention.Progress{}
	}
	stop := showProgress(rep.live, progress.Line, progressAfter, progressEvery)
	tags, err := retention.Collect(ctx, m.store, progress)
	if err != nil {
		stop()
		return err
	}
	plan := retention.Plan(now, tags, m.settings.Load().rules)
	if dryRun {
		stop()
		return retention.Print(rep.out, plan, rep.all)
	}
	res, err := retention.Apply(ctx, m.store, now, plan, progress)
	stop()
	m.deleted.Record(res)
	m.recordPass(retentionPass(by, now, res, err))
	m.log.Info().Int("tags", res.Tags).Int("manifests", res.Manifests).Int("skipped", res.Skipped).Err(err).Msg("retention: applied")
	fmt.Fprintf(rep.out, "deleted %d tags and %d untagged manifests; %d planned deletions no longer held; %s\n",
		res.Tags, res.Manifests, res.Skipped, retention.Count(plan).KeptLine())
	return err
}

// schedule runs retention then GC every gc.interval, as the settings of
// the moment say, until ctx is done. One pass at a time: neither starves
// the other.
func (m *maintenance) schedule(ctx context.Context) {
	for {
		var tick <-chan time.Time
		m.next.Store(0)
		if interval := m.settings.Load().gc.IntervalDuration(); interval > 0 {
			// An unstopped timer is collected once unreachable.
			tick = time.NewTimer(interval).C
			m.next.Store(time.Now().Add(interval).UnixNano())
		}
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
			continue
		case <-tick:
		}
		if err := m.retention(ctx, bySchedule, false, quiet); err != nil {
			m.log.Error().Err(err).Msg("retention: failed")
		}
		if err := m.gc(ctx, bySchedule, false, m.settings.Load().gc.DeleteUntagged, 0, quiet); err != nil && ctx.Err() == nil {
			m.log.Error().Err(err).Msg("gc: failed")
		}
	}
}

// withMaintenanceRoutes adds to the admin socket's handler next the
// routes `registry gc`, `registry retention` and `registry compact` use
// while a server holds the store: POST /gc, /retention and /compact,
// streaming their output.
func withMaintenanceRoutes(next http.Handler, m *maintenance) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /gc", func(w http.ResponseWriter, r *http.Request) {
		dry, _ := strconv.ParseBool(r.URL.Query().Get("dry_run"))
		untagged, _ := strconv.ParseBool(r.URL.Query().Get("delete_untagged"))
		pace, _ := strconv.ParseFloat(r.URL.Query().Get("pace"), 64)
		if pace < 0 || pace > 1 {
			pace = 0
		}
		adminReply(w, m.gc(r.Context(), byCLI, dry, untagged, pace, socketReport(w, r)))
	})
	mux.HandleFunc("POST /retention", func(w http.ResponseWriter, r *http.Request) {
		dry, _ := strconv.ParseBool(r.URL.Query().Get("dry_run"))
		adminReply(w, m.retention(r.Context(), byCLI, dry, socketReport(w, r)))
	})
	mux.HandleFunc("POST /compact", func(w http.ResponseWriter, r *http.Request) {
		adminReply(w, m.compact(r.Context(), socketReport(w, r)))
	})
	mux.Handle("/", next)
	return mux
}

// adminReply ends a reply with a trailer line the CLI turns into its exit
// status: the output was already streamed.
func adminReply(w io.Writer, err error) {
	if err != nil {
		fmt.Fprintf(w, "\nerror: %v\n", err)
	}
}

// withMaintenance runs fn on the store of f, opened here, or, when a
// server holds it, asks that server over its admin socket with query; the
// server then uses its own configuration, of which sections ("[gc]", say)
// apply to the command. It says on say which it did.
func withMaintenance(ctx context.Context, f File, configPath, sections, query string, out, say io.Writer, fn func(*maintenance) error) error {
	if err := askServer(ctx, f.Storage.Root, configPath, sections, query, out, say); !errors.Is(err, errNoServer) {
		return err
	}
	store, err := openOffline(ctx, f, configPath, say)
	if err != nil {
		return err
	}
	defer store.Close()
	f.GC.Pace = 1 // no requests to leave time for
	m, err := newMaintenance(f, store, nil, zerolog.Nop())
	if err != nil {
		return err
	}
	return fn(m)
}

// openOffline opens the existing store of f for a command run with no
// server, and says which store on say. It creates nothing: a command
// pointed at the wrong directory would otherwise act on an empty store
// that no server uses.
func openOffline(ctx context.Context, f File, configPath string, say io.Writer) (*storage.Store, error) {
	store, err := storage.OpenExisting(ctx, f.Storage)
	switch {
	case errors.Is(err, storage.ErrNoStore) && configPath == "":
		return nil, fmt.Errorf("%w; no --config given, so the built-in storage.root %q applies: pass --config (or set NORA_CONFIG) with the server's configuration file", err, f.Storage.Root)
	case errors.Is(err, storage.ErrNoStore):
		return nil, fmt.Errorf("%w; check storage.root in %s (`registry serve` creates the store)", err, configPath)
	case errors.Is(err, storage.ErrStoreBusy):
		return nil, fmt.Errorf("%w; if a registry server uses %s, stop it or wait for its scheduler ([gc] interval)", err, f.Storage.Root)
	case err != nil:
		return nil, err
	}
	fmt.Fprintf(say, "store %s (offline)\n", absPath(f.Storage.Root))
	return store, nil
}

// absPath is path made absolute for messages, or path if that fails.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

var errNoServer = errors.New("no server on the admin socket")

// maintSections are the sections of the configuration that GC and
// retention passes follow; compaction follows none.
const maintSections = "[gc] and [retention]"

// errServerGone means a server took the request and then went away: the
// pass may have half run, and the restarting server needs the store, so
// the command stops rather than run on its own.
var errServerGone = errors.New("the server went away during the pass; not running offline")

// askServer sends query to the server listening on the admin socket under
// root, streaming its output to out, and says on say that the server's
// sections of its configuration apply, if any do. It returns errNoServer
// when no server listens there, and errServerGone when one accepted the
// request and the connection broke before the pass ended.
func askServer(ctx context.Context, root, configPath, sections, query string, out, say io.Writer) error {
	path := filepath.Join(root, auth.AdminSocket)
	conn, err := (&net.Dialer{}).DialContext(ctx, "unix", path)
	if err != nil {
		return errNoServer // no socket, or a stale one: nobody listens
	}
	defer conn.Close() // if the request never used it
	if sections == "" {
		fmt.Fprintf(say, "using the running server on %s\n", absPath(path))
	} else {
		settings := "the built-in configuration"
		if configPath != "" {
			settings = configPath
		}
		fmt.Fprintf(say, "using the running server on %s; its own %s settings apply, not those of %s\n", absPath(path), sections, settings)
	}
	dialed := false
	client := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			if dialed { // one request, on the connection that answered
				return nil, errServerGone
			}
			dialed = true
			return conn, nil
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://nora"+query, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return gone(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("server admin socket: %s", resp.Status)
	}
	ew := &errorTail{w: out}
	if _, err := io.Copy(ew, resp.Body); err != nil {
		return gone(ctx, err)
	}
	return ew.err()
}

// gone returns errServerGone with the broken connection's error, or the
// context's error when the command itself was interrupted.
func gone(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w (%v)", errServerGone, err)
}

// errorTail passes output through and remembers whether it ended with the
// server's error line.
type errorTail struct {
	w    io.Writer
	tail []byte
}

func (e *errorTail) Write(p []byte) (int, error) {
	e.tail = append(e.tail, p...)
	if len(e.tail) > 4096 {
		e.tail = e.tail[len(e.tail)-4096:]
	}
	return e.w.Write(p)
}

func (e *errorTail) err() error {
	s := string(e.tail)
	if i := strings.LastIndex(s, "\nerror: "); i >= 0 {
		return errors.New(strings.TrimRight(s[i+len("\nerror: "):], "\n"))
	}
	return nil
}

// startMaintenance starts the retention-then-GC scheduler of a serving
// registry; afterGC, if not nil, runs after each GC pass that deletes.
// The returned stop waits for a running pass to end, so call it before
// closing the store.
func startMaintenance(ctx context.Context, f File, store *storage.Store, reg *prometheus.Registry, log zerolog.Logger, afterGC func(context.Context) error) (m *maintenance, stop func(), err error) {
	var r prometheus.Registerer
	if reg != nil {
		r = reg
	}
	if m, err = newMaintenance(f, store, r, log); err != nil {
		return nil, nil, err
	}
	m.afterGC = afterGC
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.schedule(ctx)
	}()
	return m, func() {
		cancel()
		<-done
		m.mu.Lock() // a pass started from the admin socket
		m.mu.Unlock()
	}, nil
}
