package cmd

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/gc"
	"github.com/nora-registry/nora/mirror"
	"github.com/nora-registry/nora/replicate"
	"github.com/nora-registry/nora/retention"
	"github.com/nora-registry/nora/storage"
	"github.com/nora-registry/nora/ui"
)

// File is nora.toml: one section per part of the registry. Each package
// owns its section's struct and defaults; cmd owns the sections that
// only the process itself uses.
type File struct {
	Server  ServerConfig   `toml:"server"`
	Storage storage.Config `toml:"storage"`
	Log     LogConfig      `toml:"log"`
	Metrics MetricsConfig  `toml:"metrics"`
	// Auth is nil without an [auth] section: the registry is then open.
	Auth *auth.Config `toml:"auth"`
	GC   gc.Config    `toml:"gc"`
	// Retention is nil without a [retention] section: no tag is deleted.
	Retention *retention.Config `toml:"retention"`
	// RateLimit limits requests per client address and identity.
	RateLimit auth.RateLimitConfig `toml:"rate_limit"`
	// Mirror lists the upstream registries cached pull-through.
	Mirror mirror.Config `toml:"mirror"`
	// Replicate lists the remotes replicated to and from while serving.
	Replicate replicate.Config `toml:"replicate"`
	// UI is the embedded dashboard.
	UI ui.Config `toml:"ui"`
}

// ServerConfig is the [server] section: the HTTP listener.
type ServerConfig struct {
	// Listen is the TCP address; port 0 picks a free port.
	Listen string `toml:"listen"`
	// TLSCert and TLSKey are PEM files; both set turns on HTTPS.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// ReadHeaderTimeout bounds how long a client may take to send request
	// headers. There is deliberately no total read or write timeout:
	// blob uploads and downloads may legitimately take hours.
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout Duration `toml:"idle_timeout"`
	// ShutdownTimeout is how long in-flight requests may run after a stop
	// signal before their connections are closed.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// BodyIdleTimeout cuts a request whose body sends nothing for this
	// long. It restarts with every read, so a slow upload that keeps
	// moving is never cut, whatever its length.
	BodyIdleTimeout Duration `toml:"body_idle_timeout"`
	// MaxConnections caps open client connections; connections over the
	// cap are closed as soon as they are accepted.
	MaxConnections int `toml:"max_connections"`
	// MaxConnectionsPerClient caps open connections from one IP address,
	// so one client cannot take every connection.
	MaxConnectionsPerClient int `toml:"max_connections_per_client"`
}

// LogConfig is the [log] section.
type LogConfig struct {
	// Level is the least severe level written: debug, info, warn, error.
	Level string `toml:"level"`
	// Format is "json", "console", or "auto": console when stderr is a
	// terminal, JSON otherwise.
	Format string `toml:"format"`
	// Access writes an info line per request. Off, only the lines of
	// requests answered 5xx remain, as warnings.
	Access bool `toml:"access"`
}

// MetricsConfig is the [metrics] section: the Prometheus endpoint.
type MetricsConfig struct {
	Enabled bool   `toml:"enabled"`
	Path    string `toml:"path"`
}

// Duration is a duration written as a string, such as "30s", "1m30s" or
// "7d" (storage.ParseDuration, the syntax of every duration key). It
// stays a string until validation so that ${VAR} expansion applies to it,
// and so that a bad value is reported with its key.
type Duration string

// Std returns d as a time.Duration. Call it on validated values only; an
// invalid duration reads as zero.
func (d Duration) Std() time.Duration {
	v, _ := storage.ParseDuration(string(d))
	return v
}

// storageDefaults is the [storage] default, naming this release for the
// text the store leaves in meta.db.
func storageDefaults() storage.Config {
	c := storage.DefaultConfig()
	c.Release = "nora " + buildVersion()
	return c
}

// DefaultFile returns the configuration used when no file is given, and the
// values of keys a file leaves out.
func DefaultFile() File {
	return File{
		Server: ServerConfig{
			Listen:            ":5000",
			ReadHeaderTimeout: "10s",
			IdleTimeout:       "2m",
			ShutdownTimeout:   "30s",
			BodyIdleTimeout:   "60s",
			// Under the usual 8,192+ descriptors a process may open,
			// leaving room for the store's files.
			MaxConnections:          4096,
			MaxConnectionsPerClient: 512,
		},
		Storage:   storageDefaults(),
		Log:       LogConfig{Level: "info", Format: "auto", Access: true},
		Metrics:   MetricsConfig{Enabled: true, Path: "/metrics"},
		GC:        gc.DefaultConfig(),
		RateLimit: auth.DefaultRateLimitConfig(),
		UI:        ui.DefaultConfig(),
	}
}

// LoadFile reads and validates the configuration at path. Keys the file
// leaves out keep their defaults. On error it returns *Problems: every
// problem found, each naming its key; only a syntax error stops the
// search at the first.
func LoadFile(path string) (File, error) {
	f := DefaultFile()
	p := &Problems{Path: path}
	text, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		p.List = append(p.List, fmt.Sprintf("cannot read: %v", err))
		return f, p
	}
	// Decoding into a map first lets every unknown key and wrong type be
	// found: decoding into File stops at the first.
	var raw map[string]any
	if _, err := toml.Decode(string(text), &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			p.List = append(p.List, fmt.Sprintf("line %d, column %d: %s", pe.Position.Line, pe.Position.Col, pe.Message))
		} else {
			p.add(err)
		}
		return f, p
	}
	if checkShape(p, reflect.TypeOf(f), reflect.ValueOf(f), raw, ""); len(p.List) > 0 {
		// What was reported is gone from raw: decode the rest, so that
		// its values are checked too.
		var b bytes.Buffer
		if err := toml.NewEncoder(&b).Encode(raw); err != nil {
			p.add(err)
			return f, p
		}
		text = b.Bytes()
	}
	md, err := toml.Decode(string(text), &f)
	if err != nil {
		p.add(err)
		return f, p
	}
	for _, k := range md.Undecoded() {
		p.List = append(p.List, k.String()+": unknown key")
	}
	if f.Auth != nil {
		*f.Auth = f.Auth.WithDefaults()
	}
	n := len(p.List)
	if expandEnv(p, reflect.ValueOf(&f).Elem(), ""); len(p.List) > n {
		// An unexpanded ${VAR} would be reported again as a bad value.
		return f, p
	}
	p.add(f.Validate())
	return f, p.err()
}

// Validate reports the invalid values, naming their keys: each section
// reports every one, or at least the first of each entry of its arrays
// (users, rules, upstreams, remotes).
func (f File) Validate() error {
	p := &Problems{}
	p.add(f.Server.validate())
	p.add(f.Storage.Validate())
	p.add(f.Log.validate())
	if f.Auth != nil {
		p.add(f.Auth.Validate())
	}
	p.add(f.GC.Validate())
	p.add(f.RateLimit.Validate())
	p.add(f.Mirror.Validate())
	p.add(f.Replicate.Validate())
	p.add(f.UI.Validate())
	if f.Retention != nil {
		p.add(f.Retention.Validate())
	}
	p.add(f.Metrics.validate())
	if f.Metrics.Enabled && f.UI.Enabled && (f.Metrics.Path == "/" || f.Metrics.Path == "/ui" || strings.HasPrefix(f.Metrics.Path, "/ui/") || strings.HasPrefix(f.Metrics.Path, "/api/v1/")) {
		p.List = append(p.List, fmt.Sprintf("metrics.path: %q is a dashboard route (turn the dashboard off with ui.enabled = false, or pick another path)", f.Metrics.Path))
	}
	if len(p.List) == 0 {
		return nil
	}
	return errors.New(strings.Join(p.List, "\n"))
}

func (s ServerConfig) validate() error {
	var errs []error
	if s.Listen == "" {
		errs = append(errs, errors.New("server.listen: must be set"))
	} else if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		errs = append(errs, fmt.Errorf("server.listen: %v", err))
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		errs = append(errs, errors.New("server.tls_cert, server.tls_key: set both or neither"))
	}
	certErr, keyErr := readable(s.TLSCert), readable(s.TLSKey)
	if certErr != nil {
		errs = append(errs, fmt.Errorf("server.tls_cert: %w", certErr))
	}
	if keyErr != nil {
		errs = append(errs, fmt.Errorf("server.tls_key: %w", keyErr))
	}
	if s.TLSCert != "" && s.TLSKey != "" && certErr == nil && keyErr == nil {
		if _, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey); err != nil {
			errs = append(errs, fmt.Errorf("server.tls_cert, server.tls_key: %w", err))
		}
	}
	for _, d := range []struct {
		key      string
		v        Duration
		positive bool
	}{
		// Zero would mean no limit: a slowloris client could hold
		// connections open forever.
		{"server.read_header_timeout", s.ReadHeaderTimeout, true},
		{"server.idle_timeout", s.IdleTimeout, false},
		{"server.shutdown_timeout", s.ShutdownTimeout, false},
		// Zero would let a stalled body hold its connection forever.
		{"server.body_idle_timeout", s.BodyIdleTimeout, true},
	} {
		v, err := storage.ParseDuration(string(d.v))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %v", d.key, err))
		case d.positive && v == 0:
			errs = append(errs, fmt.Errorf("%s: must be positive, got %q", d.key, d.v))
		}
	}
	switch {
	case s.MaxConnections < 1:
		errs = append(errs, fmt.Errorf("server.max_connections: must be at least 1, got %d", s.MaxConnections))
	case s.MaxConnectionsPerClient < 1:
		errs = append(errs, fmt.Errorf("server.max_connections_per_client: must be at least 1, got %d", s.MaxConnectionsPerClient))
	case s.MaxConnectionsPerClient > s.MaxConnections:
		errs = append(errs, fmt.Errorf("server.max_connections_per_client: %d is more than server.max_connections (%d)", s.MaxConnectionsPerClient, s.MaxConnections))
	}
	return errors.Join(errs...)
}

// readable reports why the file at path cannot be read; "" is no file.
func readable(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return err
	} else if st.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	return nil
}

func (l LogConfig) validate() error {
	switch l.Level {
	case "trace", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: unknown level %q (want debug, info, warn or error)", l.Level)
	}
	switch l.Format {
	case "auto", "json", "console":
	default:
		return fmt.Errorf("log.format: unknown format %q (want auto, json or console)", l.Format)
	}
	return nil
}

func (l LogConfig) level() zerolog.Level {
	lvl, err := zerolog.ParseLevel(l.Level)
	if err != nil {
		return zerolog.InfoLevel
	}
	return lvl
}

func (m MetricsConfig) validate() error {
	if !m.Enabled {
		return nil
	}
	switch {
	case !strings.HasPrefix(m.Path, "/"):
		return fmt.Errorf("metrics.path: must start with /, got %q", m.Path)
	case m.Path == "/v2" || strings.HasPrefix(m.Path, "/v2/") || m.Path == "/healthz" || m.Path == "/readyz":
		return fmt.Errorf("metrics.path: %q is a registry route", m.Path)
	}
	return nil
}

// expandEnv replaces ${NAME} in every string reachable from v with the
// environment variable NAME, adding a problem for each that fails. key is
// v's dotted TOML key, for errors.
func expandEnv(p *Problems, v reflect.Value, key string) {
	switch v.Kind() {
	case reflect.String:
		s, err := expand(v.String())
		if err != nil {
			p.List = append(p.List, fmt.Sprintf("%s: %v", key, err))
			return
		}
		if v.CanSet() {
			v.SetString(s)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(sf.Name)
			}
			if sf.Anonymous && sf.Tag.Get("toml") == "" {
				name = "" // embedded: its keys sit in the parent table
			}
			expandEnv(p, v.Field(i), joinKey(key, name))
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			expandEnv(p, v.Elem(), key)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			expandEnv(p, v.Index(i), fmt.Sprintf("%s[%d]", key, i))
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			// Map values are not addressable: expand a copy, store it back.
			e := reflect.New(iter.Value().Type()).Elem()
			e.Set(iter.Value())
			expandEnv(p, e, joinKey(key, fmt.Sprint(iter.Key())))
			v.SetMapIndex(iter.Key(), e)
		}
	}
}

func joinKey(parent, name string) string {
	switch {
	case parent == "":
		return name
	case name == "":
		return parent
	}
	return parent + "." + name
}

// expand replaces each ${NAME} in s. Only that form is recognised, so a
// lone $ (common in passwords and bcrypt hashes) stays as written.
func expand(s string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", errors.New("unterminated ${ (want ${NAME})")
		}
		name := s[i+2 : i+end]
		if !validEnvName(name) {
			return "", fmt.Errorf("invalid variable name %q in ${…}", name)
		}
		val, ok := os.LookupEnv(name)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		b.WriteString(val)
		s = s[i+end+1:]
	}
}

func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
