package gc

import (
	"errors"
	"fmt"
	"time"

	"github.com/nora-registry/nora/storage"
)

// Config is the [gc] section of nora.toml.
type Config struct {
	// Interval is how often `registry serve` runs retention then GC; "0"
	// turns the scheduler off.
	Interval string `toml:"interval"`
	// Grace protects anything pushed, uploaded, linked, pulled or checked
	// more recently than this.
	Grace string `toml:"grace"`
	// DeleteUntagged deletes manifests that no tag, index or kept subject
	// keeps.
	DeleteUntagged bool `toml:"delete_untagged"`
	// DeleteOrphanReferrers deletes referrers whose subject is gone.
	DeleteOrphanReferrers bool `toml:"delete_orphan_referrers"`
	// UploadMaxAge is how long an upload session may stay open.
	UploadMaxAge string `toml:"upload_max_age"`
	// Pace is the share of wall time a pass run by the server may spend
	// working; it pauses the rest so requests keep their latency: the
	// default 0.02 keeps p99 latency under load where it is without GC,
	// and stretches a pass's seconds of work into minutes. 1 never
	// pauses. A pass run by `registry gc` with no server never pauses.
	Pace float64 `toml:"pace"`
}

// DefaultConfig returns the defaults: a pass every 6h, 1h of grace,
// untagged manifests kept, orphan referrers deleted, uploads expiring
// after 24h, passes in the server working 2% of the time.
func DefaultConfig() Config {
	return Config{Interval: "6h", Grace: "1h", DeleteOrphanReferrers: true, UploadMaxAge: "24h", Pace: 0.02}
}

// Validate reports every invalid value, naming its key.
func (c Config) Validate() error {
	var errs []error
	for _, d := range []struct{ key, v string }{
		{"gc.interval", c.Interval}, {"gc.grace", c.Grace}, {"gc.upload_max_age", c.UploadMaxAge},
	} {
		if _, err := storage.ParseDuration(d.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", d.key, err))
		}
	}
	if c.Pace <= 0 || c.Pace > 1 {
		errs = append(errs, fmt.Errorf("gc.pace: %v: want a share of time above 0 and at most 1", c.Pace))
	}
	return errors.Join(errs...)
}

// Options turns a validated Config into Plan options.
func (c Config) Options() Options {
	grace, _ := storage.ParseDuration(c.Grace)
	maxAge, _ := storage.ParseDuration(c.UploadMaxAge)
	return Options{Grace: grace, DeleteUntagged: c.DeleteUntagged, DeleteOrphanReferrers: c.DeleteOrphanReferrers, UploadMaxAge: maxAge, Pace: c.Pace}
}

// IntervalDuration is Interval parsed; zero means no scheduler.
func (c Config) IntervalDuration() time.Duration {
	d, _ := storage.ParseDuration(c.Interval)
	return d
}
