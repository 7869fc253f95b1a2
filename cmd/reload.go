package cmd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/gc"
	"github.com/nora-registry/nora/retention"
	"github.com/nora-registry/nora/storage"
)

// A reload re-reads the configuration file of a running server, on SIGHUP
// or `registry reload`, and applies what can change without a restart:
// [auth] (users, groups, rules, anonymous rights, OIDC issuers, token
// lifetimes), [rate_limit], [gc], [retention], log.level, log.access, and
// the TLS certificate and key files, read again. Every other key keeps
// its running value and is named in a warning. A file that fails the
// check is refused whole.

// maintenanceSettings are the [gc] and [retention] settings a pass runs
// with.
type maintenanceSettings struct {
	gc       gc.Config
	rules    *retention.Rules
	hasRules bool // whether [[retention.rules]] are configured
}

func newMaintenanceSettings(f File) (*maintenanceSettings, error) {
	var cfg retention.Config
	if f.Retention != nil {
		cfg = *f.Retention
	}
	rules, err := retention.Compile(cfg)
	if err != nil {
		return nil, err
	}
	return &maintenanceSettings{gc: f.GC, rules: rules, hasRules: len(cfg.Rules) > 0}, nil
}

// reconfigure applies s from the next pass on; a pass under way keeps its
// settings. A new interval restarts the scheduler's wait.
func (m *maintenance) reconfigure(s *maintenanceSettings) {
	old := m.settings.Swap(s)
	m.reclaim.stale.Store(true) // measured with the old settings
	if old.gc.IntervalDuration() != s.gc.IntervalDuration() {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// levelSampler lets through the events at or above its level: the
// process logger's level, which a reload changes in every logger derived
// from it. Events below it are dropped before they are built. It also
// holds log.access, which a reload changes too.
type levelSampler struct {
	level  atomic.Int32
	access atomic.Bool
}

func (s *levelSampler) Sample(l zerolog.Level) bool { return l >= zerolog.Level(s.level.Load()) }

func (s *levelSampler) set(c LogConfig) {
	s.level.Store(int32(c.level()))
	s.access.Store(c.Access)
}

// accessSampler is the access log's: its level's events, while
// log.access is on.
type accessSampler struct{ *levelSampler }

func (s accessSampler) Sample(l zerolog.Level) bool {
	return s.access.Load() && s.levelSampler.Sample(l)
}

// accessLog returns log, made by liveLevel with s, as the access log.
func (s *levelSampler) accessLog(log zerolog.Logger) zerolog.Logger {
	return log.Sample(accessSampler{s})
}

// liveLevel returns log with its level held by the returned sampler.
func liveLevel(log zerolog.Logger, c LogConfig) (zerolog.Logger, *levelSampler) {
	s := &levelSampler{}
	s.set(c)
	return log.Level(zerolog.TraceLevel).Sample(s), s
}

// authState is what [auth] and [rate_limit] build. A reload builds a new
// one and swaps it in whole: a request authenticates with the state of
// the moment and its identity carries the rights that state gave it, so
// the decisions on a request in flight are those of the settings it
// started with.
type authState struct {
	limiter *auth.RateLimiter
	svc     *auth.Service   // nil without [auth]
	authz   auth.Authorizer // svc, counted against the limiter's rates
	tokens  http.Handler    // /auth/token and /auth/oidc/token
	handler http.Handler    // the server's handler behind the limiter
}

// liveAuth is the server's Authorizer, token endpoint, dashboard
// authenticator and rate limiter, each answering with the current
// authState.
type liveAuth struct {
	state atomic.Pointer[authState]
	next  http.Handler // set by middleware
}

func newLiveAuth(f File, robots *auth.Robots, audit *storage.AuditWriter, reg *prometheus.Registry, log zerolog.Logger) (*liveAuth, error) {
	limiter := auth.NewRateLimiter(f.RateLimit)
	a := &liveAuth{}
	st := &authState{limiter: limiter}
	if reg != nil {
		if err := limiter.Register(reg); err != nil {
			return nil, err
		}
	}
	if f.Auth != nil {
		// One limiter for API calls and logins: one table of clients,
		// bounded by max_clients, and one metric.
		opts := []auth.Option{auth.WithRateLimiter(limiter), auth.WithRobots(robots), auth.WithAudit(audit)}
		if reg != nil {
			opts = append(opts, auth.WithMetrics(reg))
		}
		svc, err := auth.New(*f.Auth, f.Storage.Root, log, opts...)
		if err != nil {
			return nil, err
		}
		st.svc = svc
	}
	a.state.Store(a.complete(st))
	return a, nil
}

// rebuilt returns the state f describes, built on the current one's
// signing key, robots and metrics.
func (a *liveAuth) rebuilt(f File) (*authState, error) {
	cur := a.state.Load()
	st := &authState{limiter: cur.limiter.Reconfigured(f.RateLimit)}
	if cur.svc != nil && f.Auth != nil {
		svc, err := cur.svc.Reload(*f.Auth, st.limiter)
		if err != nil {
			return nil, err
		}
		st.svc = svc
	}
	return a.complete(st), nil
}

func (a *liveAuth) complete(st *authState) *authState {
	if st.svc != nil {
		st.authz = st.limiter.Authorizer(st.svc)
		mux := http.NewServeMux()
		mux.Handle("/auth/token", st.svc.TokenHandler())
		mux.Handle("/auth/oidc/token", st.svc.OIDCHandler())
		st.tokens = mux
	}
	if a.next != nil {
		st.handler = st.limiter.Middleware(a.next)
	}
	return st
}

// swap makes st current and retires the state it replaces.
func (a *liveAuth) swap(st *authState) {
	if old := a.state.Swap(st); old.svc != nil && old.svc != st.svc {
		old.svc.Close()
	}
}

// middleware serves next behind the current rate limits.
func (a *liveAuth) middleware(next http.Handler) http.Handler {
	a.next = next
	st := *a.state.Load()
	st.handler = st.limiter.Middleware(next)
	a.state.Store(&st)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.state.Load().handler.ServeHTTP(w, r)
	})
}

// tokenHandler serves the token endpoints of the current [auth].
func (a *liveAuth) tokenHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := a.state.Load()
		if st.tokens == nil {
			http.NotFound(w, r)
			return
		}
		st.tokens.ServeHTTP(w, r)
	})
}

func (a *liveAuth) Authenticate(r *http.Request) (*auth.Identity, error) {
	return a.state.Load().authz.Authenticate(r)
}

func (a *liveAuth) Authorize(r *http.Request, id *auth.Identity, repo string, action auth.Action) error {
	return a.state.Load().authz.Authorize(r, id, repo, action)
}

// Subject looks up a dashboard session's user or robot in the current
// [auth]: a session lasts across reloads while its user keeps the same
// password.
func (a *liveAuth) Subject(ctx context.Context, kind auth.Kind, name string) (*auth.Identity, string, bool) {
	return a.state.Load().svc.Subject(ctx, kind, name)
}

// liveCert is the server's TLS certificate. Each reload reads the files
// again, so a renewed certificate is served without a restart.
type liveCert struct {
	cert atomic.Pointer[tls.Certificate]
}

func loadCert(s ServerConfig) (*liveCert, error) {
	c := &liveCert{}
	return c, c.load(s)
}

func (c *liveCert) load(s ServerConfig) error {
	cert, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey)
	if err != nil {
		return fmt.Errorf("server.tls_cert, server.tls_key: %w", err)
	}
	c.cert.Store(&cert)
	return nil
}

func (c *liveCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.cert.Load(), nil }

// reloader re-reads the server's configuration file and applies it.
type reloader struct {
	path  string // "": the built-in defaults, nothing to re-read
	auth  *liveAuth
	maint *maintenance
	cert  *liveCert // nil without TLS
	level *levelSampler
	log   zerolog.Logger

	mu  sync.Mutex
	cur File // the settings in force
}

// reload applies the file at r.path and returns the keys that changed but
// keep their running value until a restart. On error nothing changed.
func (r *reloader) reload() (restart []string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.path == "" {
		return nil, errors.New("the server runs on the built-in defaults (no --config): there is no file to reload")
	}
	f, err := LoadFile(r.path)
	if err != nil {
		return nil, err
	}
	running := r.cur
	var cert *liveCert
	if r.cert != nil && f.Server.TLSCert != "" {
		// Turning TLS on or off needs a restart; its files do not.
		running.Server.TLSCert, running.Server.TLSKey = f.Server.TLSCert, f.Server.TLSKey
		if cert, err = loadCert(f.Server); err != nil {
			return nil, fmt.Errorf("%s: %w", r.path, err)
		}
	}
	restart = restartKeys(running, f)
	if (r.cur.Auth == nil) != (f.Auth == nil) {
		f.Auth = r.cur.Auth // turning auth on or off needs a restart
	}
	st, err := r.auth.rebuilt(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.path, err)
	}
	ms, err := newMaintenanceSettings(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.path, err)
	}
	r.auth.swap(st)
	r.maint.reconfigure(ms)
	if cert != nil {
		r.cert.cert.Store(cert.cert.Load())
		r.cur.Server.TLSCert, r.cur.Server.TLSKey = f.Server.TLSCert, f.Server.TLSKey
	}
	r.level.set(f.Log)
	r.cur.Auth, r.cur.RateLimit, r.cur.GC, r.cur.Retention = f.Auth, f.RateLimit, f.GC, f.Retention
	r.cur.Log.Level, r.cur.Log.Access = f.Log.Level, f.Log.Access
	return restart, nil
}

// reloadAndLog reloads and logs the outcome, which it returns as the
// lines `registry reload` prints.
func (r *reloader) reloadAndLog(by string) (string, error) {
	restart, err := r.reload()
	if err != nil {
		r.log.Error().Str("by", by).Str("config", r.path).Strs("problems", strings.Split(err.Error(), "\n")).
			Msg("configuration refused; the running settings stay")
		return "", err
	}
	var b strings.Builder
	if len(restart) > 0 {
		w := "changed keys that apply only after a restart: " + strings.Join(restart, ", ")
		r.log.Warn().Str("by", by).Str("config", r.path).Strs("keys", restart).Msg(w)
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	r.log.Info().Str("by", by).Str("config", r.path).Msg("configuration reloaded")
	fmt.Fprintf(&b, "%s: reloaded\n", r.path)
	return b.String(), nil
}

// onSIGHUP reloads at every SIGHUP until ctx is done.
func (r *reloader) onSIGHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.reloadAndLog("SIGHUP")
		}
	}
}

// handler serves POST /reload on the admin socket for `registry reload`.
func (r *reloader) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		out, err := r.reloadAndLog("registry reload")
		io.WriteString(w, out)
		adminReply(w, err)
	})
}

// liveKeys are the keys a reload applies; a change anywhere else needs a
// restart. [auth] is live except turning it on or off.
var liveKeys = map[string]bool{"auth": true, "rate_limit": true, "gc": true, "retention": true, "log.level": true, "log.access": true}

// restartKeys names the keys that differ between the running settings
// and f and that only a restart applies.
func restartKeys(running, f File) []string {
	var out []string
	if (running.Auth == nil) != (f.Auth == nil) {
		out = append(out, "auth (turning authentication on or off)")
	}
	diffKeys(&out, reflect.ValueOf(running), reflect.ValueOf(f), "")
	return out
}

// diffKeys appends the dotted keys under key where a and b differ,
// descending into tables and skipping liveKeys.
func diffKeys(out *[]string, a, b reflect.Value, key string) {
	if liveKeys[key] || reflect.DeepEqual(a.Interface(), b.Interface()) {
		return
	}
	if a.Kind() != reflect.Struct {
		*out = append(*out, key)
		return
	}
	t := a.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		diffKeys(out, a.Field(i), b.Field(i), joinKey(key, name))
	}
}
