package mirror

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nora-registry/nora/storage"
	"github.com/nora-registry/nora/trust"
)

// Config is the [mirror] section: the upstream registries the registry
// caches. Without upstreams the mirror is off.
type Config struct {
	Upstreams []Upstream `toml:"upstreams"`
	// MaxSize caps the bytes cached from all upstreams together, e.g.
	// "100GiB", in addition to each upstream's own max_size: past it,
	// the least recently pulled images of any upstream are evicted.
	// Empty or "0" means no cap.
	MaxSize string `toml:"max_size"`
	// KeepRecent protects from eviction an image used more recently than
	// this. Empty means 2 minutes.
	KeepRecent string `toml:"keep_recent"`
}

// MaxBytes returns c's total cache cap in bytes, 0 for none. Call it on
// a validated Config.
func (c Config) MaxBytes() int64 {
	n, _ := storage.ParseSize(c.MaxSize)
	return n
}

// keepRecent returns c's KeepRecent, or def when it is empty. Call it on
// a validated Config.
func (c Config) keepRecent(def time.Duration) time.Duration {
	if c.KeepRecent == "" {
		return def
	}
	d, _ := storage.ParseDuration(c.KeepRecent)
	return d
}

// Upstream is one [[mirror.upstreams]] entry.
type Upstream struct {
	// Name identifies the upstream in logs and metrics.
	Name string `toml:"name"`
	// URL is the upstream's base, scheme and host only, e.g.
	// "https://registry-1.docker.io".
	URL string `toml:"url"`
	// Hosts are the registry host names the upstream answers for: the
	// values of containerd's ?ns= parameter and the path prefixes
	// (/v2/docker.io/library/nginx/...) that route to it. The first is
	// the prefix of cached names.
	Hosts []string `toml:"hosts"`
	// Username and Password are the upstream's credentials, sent with
	// Basic auth or exchanged for a token as the upstream asks.
	Username string `toml:"username"`
	Password string `toml:"password"`
	// CAFile is a PEM bundle trusted for the upstream's TLS certificate,
	// in addition to the system's roots.
	CAFile string `toml:"ca_file"`
	// Insecure allows a plain http:// URL.
	Insecure bool `toml:"insecure"`
	// Revalidate is how long a cached tag is served without asking the
	// upstream; after it, a HEAD decides. Empty means DefaultRevalidate.
	Revalidate string `toml:"revalidate"`
	// Timeout limits a fetch of a manifest or a tag list. Empty means
	// DefaultTimeout.
	Timeout string `toml:"timeout"`
	// RevalidateTimeout limits the HEAD that revalidates a cached tag,
	// the HEAD of an uncached blob and a referrers list: shorter than
	// Timeout, since a cached answer is waiting. Empty means
	// DefaultRevalidateTimeout.
	RevalidateTimeout string `toml:"revalidate_timeout"`
	// BlobIdleTimeout cuts a blob fetch that receives no byte for this
	// long; a blob has no total limit. Empty means DefaultBlobIdleTimeout.
	BlobIdleTimeout string `toml:"blob_idle_timeout"`
	// StaleRetry is how long after a failed revalidation a cached tag is
	// served stale without asking upstream again. Empty means
	// DefaultStaleRetry.
	StaleRetry string `toml:"stale_retry"`
	// Default routes names that carry neither a host prefix nor ?ns= and
	// are not local repositories to this upstream (docker's
	// registry-mirrors, which send no host). At most one upstream.
	Default bool `toml:"default"`
	// AllowPush lets clients push into names routed to this upstream;
	// by default such pushes are refused with DENIED.
	AllowPush bool `toml:"allow_push"`
	// MaxSize caps the bytes cached from this upstream, e.g. "20GiB":
	// past it, the least recently pulled images are evicted. Empty or
	// "0" means no cap.
	MaxSize string `toml:"max_size"`
}

// MaxBytes returns u's cache cap in bytes, 0 for none. Call it on a
// validated Upstream.
func (u Upstream) MaxBytes() int64 {
	n, _ := storage.ParseSize(u.MaxSize)
	return n
}

// DefaultRevalidate is the revalidation interval of an upstream that sets
// none.
const DefaultRevalidate = 5 * time.Minute

// Defaults of the upstream time limits. Fetches run on contexts detached
// from the request, so these, not the client, end a stuck fetch.
const (
	DefaultTimeout           = 30 * time.Second
	DefaultRevalidateTimeout = 10 * time.Second
	DefaultBlobIdleTimeout   = 2 * time.Minute
	// DefaultStaleRetry makes a down or stalled uplink cost one timeout
	// per tag every 10 s, not one per pull.
	DefaultStaleRetry = 10 * time.Second
)

// RevalidateInterval returns u's revalidation interval. Call it, and the
// time limit methods below, on a validated Upstream.
func (u Upstream) RevalidateInterval() time.Duration {
	return duration(u.Revalidate, DefaultRevalidate)
}

func (u *Upstream) fetchTimeout() time.Duration { return duration(u.Timeout, DefaultTimeout) }

func (u *Upstream) revalidateTimeout() time.Duration {
	return duration(u.RevalidateTimeout, DefaultRevalidateTimeout)
}

func (u *Upstream) blobIdleTimeout() time.Duration {
	return duration(u.BlobIdleTimeout, DefaultBlobIdleTimeout)
}

func (u *Upstream) staleRetry() time.Duration { return duration(u.StaleRetry, DefaultStaleRetry) }

func duration(s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, _ := storage.ParseDuration(s)
	return d
}

// validateDuration checks the duration s of key, which must be positive,
// or not negative when zero is allowed.
func validateDuration(key, s string, zero bool) error {
	if s == "" {
		return nil
	}
	d, err := storage.ParseDuration(s)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %v", key, err)
	case !zero && d == 0:
		return fmt.Errorf("%s: must be positive, got %q", key, s)
	}
	return nil
}

// Validate reports the invalid values, naming their keys: the first of
// each upstream.
func (c Config) Validate() error {
	var errs []error
	if _, err := storage.ParseSize(c.MaxSize); err != nil {
		errs = append(errs, fmt.Errorf("mirror.max_size: %v", err))
	}
	if err := validateDuration("mirror.keep_recent", c.KeepRecent, false); err != nil {
		errs = append(errs, err)
	}
	hosts := map[string]string{}
	names := map[string]bool{}
	def := ""
	for i, u := range c.Upstreams {
		key := fmt.Sprintf("mirror.upstreams[%d]", i)
		if err := u.validate(key); err != nil {
			errs = append(errs, err)
			continue
		}
		if names[u.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %q is used by another upstream", key, u.Name))
		}
		names[u.Name] = true
		for _, h := range u.Hosts {
			if other, ok := hosts[h]; ok {
				errs = append(errs, fmt.Errorf("%s.hosts: %q is also a host of %s", key, h, other))
			}
			hosts[h] = key
		}
		if u.Default {
			if def != "" {
				errs = append(errs, fmt.Errorf("%s.default: %s is already the default upstream", key, def))
			}
			def = key
		}
	}
	return errors.Join(errs...)
}

func (u Upstream) validate(key string) error {
	if u.Name == "" {
		return fmt.Errorf("%s.name: must be set", key)
	}
	if err := u.validateURL(key); err != nil {
		return err
	}
	if len(u.Hosts) == 0 {
		return fmt.Errorf("%s.hosts: must name at least one host, e.g. [\"docker.io\"]", key)
	}
	for _, h := range u.Hosts {
		if !validHost(h) {
			return fmt.Errorf("%s.hosts: %q is not a lowercase host name without port", key, h)
		}
	}
	if (u.Username == "") != (u.Password == "") {
		return fmt.Errorf("%s.username, %s.password: set both or neither", key, key)
	}
	if u.CAFile != "" {
		if _, err := trust.Pool(u.CAFile); err != nil {
			return fmt.Errorf("%s.ca_file: %w", key, err)
		}
	}
	if err := validateDuration(key+".revalidate", u.Revalidate, true); err != nil {
		return err
	}
	for _, d := range []struct{ name, value string }{
		{"timeout", u.Timeout}, {"revalidate_timeout", u.RevalidateTimeout},
		{"blob_idle_timeout", u.BlobIdleTimeout}, {"stale_retry", u.StaleRetry},
	} {
		if err := validateDuration(key+"."+d.name, d.value, false); err != nil {
			return err
		}
	}
	if _, err := storage.ParseSize(u.MaxSize); err != nil {
		return fmt.Errorf("%s.max_size: %v", key, err)
	}
	return nil
}

func (u Upstream) validateURL(key string) error {
	if u.URL == "" {
		return fmt.Errorf("%s.url: must be set", key)
	}
	p, err := url.Parse(u.URL)
	switch {
	case err != nil:
		return fmt.Errorf("%s.url: %v", key, err)
	case p.Scheme != "https" && p.Scheme != "http":
		return fmt.Errorf("%s.url: scheme must be https or http, got %q", key, u.URL)
	case p.Host == "" || p.User != nil || p.RawQuery != "" || p.Fragment != "" || strings.Trim(p.Path, "/") != "":
		return fmt.Errorf("%s.url: want scheme://host[:port] only, got %q", key, u.URL)
	case p.Scheme == "http" && !u.Insecure:
		return fmt.Errorf("%s.url: %q is plain http; set %s.insecure = true to allow it", key, u.URL, key)
	case p.Scheme == "https" && u.Insecure:
		return fmt.Errorf("%s.insecure: applies to http:// urls only; for a private CA set %s.ca_file", key, key)
	}
	return nil
}

// validHost reports whether h can prefix a repository name: lowercase
// labels of letters, digits and inner dashes, joined by dots.
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
