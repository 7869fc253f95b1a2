package replicate

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nora-registry/nora/storage"
	"github.com/nora-registry/nora/trust"
)

// Config is the [replicate] section: remotes this registry replicates to
// and from continuously while it serves.
type Config struct {
	Push []Push `toml:"push"`
	Pull []Pull `toml:"pull"`
}

// Remote is what a [[replicate.push]] target and a [[replicate.pull]]
// source share: the remote, what to copy, and how fast and when.
type Remote struct {
	// Name identifies the remote in logs, metrics and status; a push
	// target's event cursor is kept under it, so renaming a target makes
	// it a fresh one.
	Name string `toml:"name"`
	// URL is the remote registry, scheme and host only.
	URL string `toml:"url"`
	// Repositories are repository globs (RBAC syntax); none means every
	// repository.
	Repositories []string `toml:"repositories"`
	// Tags are tag globs; none means every tag.
	Tags []string `toml:"tags"`
	// ToPrefix puts copies under this repository prefix on the receiving
	// side.
	ToPrefix string `toml:"to_prefix"`
	// Username and Password are the remote's credentials; a robot token
	// of a nora remote works as the password.
	Username string `toml:"username"`
	Password string `toml:"password"`
	// Insecure allows a plain http:// URL.
	Insecure bool `toml:"insecure"`
	// CAFile is a PEM file of certificate authorities trusted for the
	// remote's TLS certificate, besides the system's.
	CAFile string `toml:"ca_file"`
	// MaxRate caps the bytes per second sent and received, e.g.
	// "2MiB/s". Empty means no cap.
	MaxRate string `toml:"max_rate"`
	// Window is when copies run, "HH:MM-HH:MM" in local time; it may
	// span midnight. Empty means always.
	Window string `toml:"window"`
	// Concurrency is how many blobs move at once; 0 means 4.
	Concurrency int `toml:"concurrency"`
}

// Push is one [[replicate.push]] target: it receives every push and,
// unless Deletes is false, every delete of matching repositories.
type Push struct {
	Remote
	// Deletes replicates tag and manifest deletes; nil means true.
	Deletes *bool `toml:"deletes"`
}

// Pull is one [[replicate.pull]] source, polled every Interval.
type Pull struct {
	Remote
	// Interval is the time between polls; empty means DefaultInterval.
	Interval string `toml:"interval"`
	// Newest keeps only the N highest tags of each repository in version
	// order (after the tag globs); 0 means every tag.
	Newest int `toml:"newest"`
	// Platforms, "os/arch[/variant]", are the only platforms of each
	// index copied (see Job.Platforms); none means all.
	Platforms []string `toml:"platforms"`
}

// platforms parses p's Platforms; call it on a validated Pull.
func (p Pull) platforms() []v1.Platform {
	var out []v1.Platform
	for _, s := range p.Platforms {
		pl, _ := ParsePlatform(s)
		out = append(out, pl)
	}
	return out
}

// DefaultInterval is the poll interval of a pull source that sets none.
const DefaultInterval = 5 * time.Minute

// DefaultConcurrency is how many blobs of a remote move at once.
const DefaultConcurrency = 4

// ReplicatesDeletes reports whether deletes go to the target.
func (p Push) ReplicatesDeletes() bool { return p.Deletes == nil || *p.Deletes }

// PollInterval returns the interval of a validated Pull.
func (p Pull) PollInterval() time.Duration {
	if p.Interval == "" {
		return DefaultInterval
	}
	d, _ := storage.ParseDuration(p.Interval)
	return d
}

// Validate reports the invalid values, naming their keys: the first of
// each remote.
func (c Config) Validate() error {
	names := map[string]string{}
	check := func(key string, r Remote) error {
		if err := r.validate(key); err != nil {
			return err
		}
		if other, ok := names[r.Name]; ok {
			return fmt.Errorf("%s.name: %q is also the name of %s", key, r.Name, other)
		}
		names[r.Name] = key
		return nil
	}
	var errs []error
	for i, p := range c.Push {
		errs = append(errs, check(fmt.Sprintf("replicate.push[%d]", i), p.Remote))
	}
	for i, p := range c.Pull {
		errs = append(errs, validatePull(fmt.Sprintf("replicate.pull[%d]", i), p, check))
	}
	return errors.Join(errs...)
}

func validatePull(key string, p Pull, check func(string, Remote) error) error {
	if err := check(key, p.Remote); err != nil {
		return err
	}
	if p.Interval != "" {
		if d, err := storage.ParseDuration(p.Interval); err != nil || d <= 0 {
			return fmt.Errorf("%s.interval: want a positive duration such as \"30s\" or \"1h\", got %q", key, p.Interval)
		}
	}
	if p.Newest < 0 {
		return fmt.Errorf("%s.newest: must not be negative, got %d", key, p.Newest)
	}
	for _, pl := range p.Platforms {
		if _, err := ParsePlatform(pl); err != nil {
			return fmt.Errorf("%s.platforms: %v", key, err)
		}
	}
	return nil
}

func (r Remote) validate(key string) error {
	if r.Name == "" {
		return fmt.Errorf("%s.name: must be set", key)
	}
	if strings.Trim(r.Name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		return fmt.Errorf("%s.name: %q: use letters, digits, '.', '_' and '-' only", key, r.Name)
	}
	if err := r.validateURL(key); err != nil {
		return err
	}
	if _, err := NewSelection(r.Repositories, r.Tags); err != nil {
		return fmt.Errorf("%s.repositories, %s.tags: %v", key, key, err)
	}
	if r.ToPrefix != "" {
		if _, err := name.NewRepository("localhost/"+r.ToPrefix, name.StrictValidation); err != nil {
			return fmt.Errorf("%s.to_prefix: %q is not a repository name", key, r.ToPrefix)
		}
	}
	if (r.Username == "") != (r.Password == "") {
		return fmt.Errorf("%s.username, %s.password: set both or neither", key, key)
	}
	if _, err := ParseRate(r.MaxRate); err != nil {
		return fmt.Errorf("%s.max_rate: %v", key, err)
	}
	if _, err := ParseWindow(r.Window); err != nil {
		return fmt.Errorf("%s.window: %v", key, err)
	}
	if r.Concurrency < 0 {
		return fmt.Errorf("%s.concurrency: must not be negative, got %d", key, r.Concurrency)
	}
	if r.CAFile != "" {
		if _, err := trust.Pool(r.CAFile); err != nil {
			return fmt.Errorf("%s.ca_file: %v", key, err)
		}
	}
	return nil
}

func (r Remote) validateURL(key string) error {
	https := strings.HasPrefix(r.URL, "https://")
	if !https && !strings.HasPrefix(r.URL, "http://") {
		return fmt.Errorf("%s.url: want https://host[:port] (or http:// with insecure = true), got %q", key, r.URL)
	}
	_, path, err := ParseRemote(r.URL)
	switch {
	case err != nil:
		return fmt.Errorf("%s.url: %v", key, err)
	case path != "":
		return fmt.Errorf("%s.url: want scheme://host[:port] only, got %q; put copies under a path with to_prefix", key, r.URL)
	case !https && !r.Insecure:
		return fmt.Errorf("%s.url: %q is plain http; set %s.insecure = true to allow it", key, r.URL, key)
	case https && r.Insecure:
		return fmt.Errorf("%s.insecure: applies to http:// urls only", key)
	}
	return nil
}

// ParseRate reads a rate such as "2MiB/s" or "500KB/s" as bytes per
// second; "" and "0" mean no cap (0).
func ParseRate(s string) (int64, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	size, ok := strings.CutSuffix(s, "/s")
	if !ok {
		return 0, fmt.Errorf("%q is not a rate (want bytes per second, e.g. \"2MiB/s\")", s)
	}
	n, err := storage.ParseSize(strings.TrimSpace(size))
	if err != nil {
		return 0, fmt.Errorf("%q is not a rate (want bytes per second, e.g. \"2MiB/s\")", s)
	}
	return n, nil
}

// endpoint is the remote as a replication endpoint, its requests sent
// through wrap (rate cap and Retry-After) when not nil.
func (r Remote) endpoint(wrap func(http.RoundTripper) http.RoundTripper) (Endpoint, error) {
	reg, _, err := ParseRemote(r.URL)
	if err != nil {
		return Endpoint{}, err
	}
	var tr http.RoundTripper = http.DefaultTransport
	if r.CAFile != "" {
		pool, err := trust.Pool(r.CAFile)
		if err != nil {
			return Endpoint{}, err
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		tr = t
	}
	e := Endpoint{Registry: reg, Transport: tr, Auth: authn.Anonymous}
	if wrap != nil {
		e.Transport = wrap(tr)
	}
	if r.Username != "" {
		e.Auth = &authn.Basic{Username: r.Username, Password: r.Password}
	}
	return e, nil
}
