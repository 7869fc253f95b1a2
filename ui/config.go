package ui

import (
	"fmt"
	"time"

	"github.com/nora-registry/nora/storage"
)

// Config is the [ui] section.
type Config struct {
	// Enabled serves the dashboard at /ui/ and its API at /api/v1/.
	Enabled bool `toml:"enabled"`
	// SessionLifetime is how long a login lasts, e.g. "12h".
	SessionLifetime string `toml:"session_lifetime"`
}

// DefaultConfig is the dashboard on, with twelve-hour sessions.
func DefaultConfig() Config {
	return Config{Enabled: true, SessionLifetime: "12h"}
}

// Validate reports the first invalid value, naming its key.
func (c Config) Validate() error {
	d, err := storage.ParseDuration(c.SessionLifetime)
	switch {
	case err != nil:
		return fmt.Errorf("ui.session_lifetime: invalid duration %q (want e.g. \"12h\")", c.SessionLifetime)
	case d < time.Minute:
		return fmt.Errorf("ui.session_lifetime: must be at least 1m, got %q", c.SessionLifetime)
	}
	return nil
}

func (c Config) sessionLifetime() time.Duration {
	d, _ := storage.ParseDuration(c.SessionLifetime)
	return d
}
