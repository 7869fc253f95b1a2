package cmd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/gc"
	"github.com/nora-registry/nora/mirror"
	"github.com/nora-registry/nora/registry"
	"github.com/nora-registry/nora/storage"
	"github.com/nora-registry/nora/ui"
)

func newServeCmd() *cobra.Command {
	var configPath string
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve the registry until interrupted",
		Long: `Serve the registry until SIGINT or SIGTERM, then stop accepting
connections, let in-flight requests finish within server.shutdown_timeout
and close the store. SIGHUP (or ` + "`registry reload`" + `) re-reads the
configuration file: see ` + "`registry reload --help`" + `.

Without --config (or NORA_CONFIG) it serves the embedded default: port 5000,
data in ./data, no authentication.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), configPath, f, cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVarP(&configPath, "config", "c", os.Getenv("NORA_CONFIG"), "configuration `file` (default: $NORA_CONFIG, else built-in defaults)")
	return c
}

// loadConfig loads path, or returns the defaults when path is empty.
func loadConfig(path string) (File, error) {
	if path == "" {
		return DefaultFile(), nil
	}
	return LoadFile(path)
}

// serve runs the registry described by f, read from path ("" for the
// defaults), until ctx is done, logging to logOut. It returns nil after a
// clean shutdown.
func serve(ctx context.Context, path string, f File, logOut io.Writer) error {
	gc.LeaveHeapRoom()
	// Lines on a terminal are for a person watching: they go out at once.
	var batch *logBatch
	if !isTerminal(logOut) {
		batch = newLogBatch(logOut)
		logOut = batch
		defer batch.Flush() // deferred first, so it writes every line serve logs
	}
	log, level := liveLevel(newLogger(f.Log, logOut), f.Log)

	var tlsConfig *tls.Config
	var cert *liveCert // read again by each reload
	if f.Server.TLSCert != "" {
		var err error
		if cert, err = loadCert(f.Server); err != nil {
			return err
		}
		tlsConfig = &tls.Config{GetCertificate: cert.get, MinVersion: tls.VersionTLS12}
	}

	store, err := storage.Open(ctx, f.Storage)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error().Err(err).Msg("closing store")
		}
	}()

	// The audit record is written behind the requests; Close, deferred
	// after the store's, writes what is queued before the store closes.
	audit := storage.NewAuditWriter(store, func(err error) { log.Warn().Err(err).Msg("audit record") })
	defer audit.Close()
	defer runBehind(ctx, func(ctx context.Context) {
		store.TrackUsage(ctx, func(err error) { log.Warn().Err(err).Msg("recording storage usage") })
	})()
	defer runBehind(ctx, func(ctx context.Context) {
		store.ComposeBlobs(ctx, func(err error) { log.Warn().Err(err).Msg("composing a chunked blob for redirects") })
	})()
	defer runBehind(ctx, func(ctx context.Context) {
		store.KeepCompact(ctx, func(res storage.CompactResult, err error) { logCompaction(log, res, err) })
	})()
	opts := []registry.Option{registry.WithLogger(log), registry.WithAccessLog(level.accessLog(log)), registry.WithAudit(audit)}
	var reg *prometheus.Registry
	if f.Metrics.Enabled {
		if reg, err = newMetricsRegistry(store); err != nil {
			return err
		}
		opts = append(opts, registry.WithMetrics(reg))
	}
	var authn ui.Authenticator
	robots := auth.NewRobots(store)
	live, err := newLiveAuth(f, robots, audit, reg, log)
	if err != nil {
		return err
	}
	if f.Auth != nil {
		opts = append(opts, registry.WithAuthorizer(live))
		authn = live
		// The token endpoints are served inside the registry's access log,
		// metrics and request ids.
		opts = append(opts, registry.WithHandler(live.tokenHandler(), "/auth/token", "/auth/oidc/token"))
	}
	mir, err := mirror.New(f.Mirror, store, log.With().Str("component", "mirror").Logger())
	if err != nil {
		return err
	}
	var afterGC func(context.Context) error // GC may have deleted cached content
	if mir != nil {
		defer mir.Close()
		afterGC = mir.Evict
		if reg != nil {
			if err := mir.Register(reg); err != nil {
				return err
			}
		}
	}
	opts = append(opts, registry.WithMirror(mir))
	maint, stopMaintenance, err := startMaintenance(ctx, f, store, reg, log, afterGC)
	if err != nil {
		return err
	}
	defer stopMaintenance()
	repl, stopRepl, err := startReplication(ctx, f, store, reg, log)
	if err != nil {
		return err
	}
	defer stopRepl()

	if f.UI.Enabled {
		uiOpts := []ui.Option{ui.WithAudit(audit), ui.WithReplication(repl.Status)}
		if mir != nil {
			uiOpts = append(uiOpts, ui.WithMirror(mir.Hits))
		}
		dash, err := dashboard(f, store, authn, robots, dashboardMaintenance{ctx, maint}, log, uiOpts...)
		if err != nil {
			return err
		}
		opts = append(opts, dash)
	}
	handler := registry.New(store, opts...)
	handler = live.middleware(handler)
	if reg != nil {
		handler = withMetricsEndpoint(handler, f.Metrics.Path, reg)
	}
	trim := &idleTrimmer{after: idleTrimAfter, release: store.Idle}
	handler = trim.wrap(handler)
	handler = guardBodies(handler, f.Server.BodyIdleTimeout.Std())
	if batch != nil {
		handler = batch.wrap(handler)
	}
	trimCtx, stopTrim := context.WithCancel(ctx)
	defer stopTrim()
	go trim.run(trimCtx)

	// `registry token`, `gc`, `retention` and `replicate` reach the store
	// through the server while it holds the store; replicate reads and
	// writes through the registry API there, which asks for no
	// credentials: the socket is its owner's alone.
	admin := withPrefix(withMaintenanceRoutes(robots.AdminHandler(), maint), "/v2/", registry.New(store, registry.WithLogger(log), registry.WithAccessLog(level.accessLog(log)), registry.WithPartialIndexes()))
	admin = withPrefix(admin, "/replicate/", replicationStatusHandler(repl))
	rl := &reloader{path: path, auth: live, maint: maint, cert: cert, level: level, log: log, cur: f}
	admin = withPrefix(admin, "/reload", rl.handler())
	go rl.onSIGHUP(ctx)
	if stop, err := serveAdmin(f.Storage.Root, admin); err != nil {
		log.Warn().Err(err).Msg("admin socket: registry token commands need the server stopped")
	} else {
		defer stop()
	}

	tcp, err := net.Listen("tcp", f.Server.Listen)
	if err != nil {
		return fmt.Errorf("server.listen: %w", err)
	}
	ln := newLimitListener(tcp.(*net.TCPListener), f.Server.MaxConnections, f.Server.MaxConnectionsPerClient, log)
	if reg != nil {
		if err := ln.register(reg); err != nil {
			ln.Close()
			return err
		}
	}
	srv := &http.Server{
		Handler:           handler,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: f.Server.ReadHeaderTimeout.Std(),
		IdleTimeout:       f.Server.IdleTimeout.Std(),
		ErrorLog:          stdlog.New(warnWriter{log}, "", 0),
	}
	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	logStartup(log, f, ln.Addr().String(), tlsConfig != nil, live.state.Load().svc)
	// What start-up alone ran need not stay resident.
	releaseExecutable()

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	// ctx is already cancelled: the grace period needs its own clock.
	timeout := f.Server.ShutdownTimeout.Std()
	log.Info().Int64("timeout_ms", timeout.Milliseconds()).Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: requests still running after server.shutdown_timeout (%s) were cut off", timeout)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info().Msg("stopped")
	return nil
}

// withMetricsEndpoint serves Prometheus metrics at path and everything else
// with next. A plain comparison keeps a second router off the hot path, and
// scrapes out of the access log.
func withMetricsEndpoint(next http.Handler, path string, reg *prometheus.Registry) http.Handler {
	metrics := promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:            reg,
		MaxRequestsInFlight: 4,
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path {
			metrics.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// dashboard returns the registry option that serves the dashboard next
// to the API.
func dashboard(f File, store *storage.Store, authn ui.Authenticator, robots *auth.Robots, maint ui.Maintenance, log zerolog.Logger, extra ...ui.Option) (registry.Option, error) {
	opts := append([]ui.Option{ui.WithStarted(time.Now()), ui.WithLogger(log.With().Str("component", "ui").Logger()), ui.WithRobots(robots), ui.WithMaintenance(maint)}, extra...)
	if authn != nil {
		opts = append(opts, ui.WithAuth(authn))
	}
	dash, err := ui.New(f.UI, store, f.Storage.Root, opts...)
	if err != nil {
		return nil, err
	}
	return registry.WithHandler(dash, ui.Patterns...), nil
}

// withPrefix serves the paths under prefix with h and everything else
// with next: the token service under /auth/, and the registry API under
// /v2/ on the admin socket.
func withPrefix(next http.Handler, prefix string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, prefix) {
			h.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// serveAdmin serves robot token, gc, retention and replicate commands on
// the admin socket in root until stop is called.
func serveAdmin(root string, admin http.Handler) (stop func(), err error) {
	path := filepath.Join(root, auth.AdminSocket)
	ln, err := auth.ListenAdmin(path)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: admin, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return func() {
		srv.Close()
		os.Remove(path)
	}, nil
}

// newLogger returns the process logger writing to w in the configured
// format and level.
func newLogger(c LogConfig, w io.Writer) zerolog.Logger {
	if c.Format == "console" || c.Format == "auto" && isTerminal(w) {
		w = consoleWriter(w)
	}
	return zerolog.New(w).Level(c.level()).Hook(&stampHook{})
}

// warnWriter turns net/http's internal log lines (TLS handshake failures,
// accept errors) into warnings on the process logger.
type warnWriter struct{ log zerolog.Logger }

func (w warnWriter) Write(p []byte) (int, error) {
	w.log.Warn().Str("component", "http").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// runBehind runs fn in a goroutine of its own; the function it returns
// cancels fn's context and waits for fn to return.
func runBehind(ctx context.Context, fn func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	return func() { cancel(); <-done }
}
