package storage

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a duration as nora.toml writes it everywhere: Go's
// syntax ("30s", "90m", "1h30m"), whole days ("7d"), or days followed by
// Go's syntax ("1d12h"). Negative durations are rejected. Every package's
// Config parses its durations here, so one syntax holds for every key.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "-") {
		if _, err := parseDuration(t[1:]); err == nil {
			return 0, fmt.Errorf("must not be negative, got %q", s)
		}
	}
	d, err := parseDuration(t)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q (want e.g. \"30s\", \"90m\", \"36h\", \"7d\")", s)
	}
	return d, nil
}

func parseDuration(s string) (time.Duration, error) {
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	n, err := strconv.ParseUint(days, 10, 32)
	if err != nil || n > 100*365 {
		return 0, fmt.Errorf("bad days %q", days)
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest == "" {
		return d, nil
	}
	r, err := time.ParseDuration(rest)
	if err != nil || r < 0 {
		return 0, fmt.Errorf("bad remainder %q", rest)
	}
	return d + r, nil
}
