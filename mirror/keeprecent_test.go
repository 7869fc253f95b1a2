package mirror

import (
	"strings"
	"testing"
	"time"
)

func TestKeepRecent(t *testing.T) {
	up := []Upstream{{Name: "hub", URL: "https://registry-1.docker.io", Hosts: []string{"docker.io"}}}
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string // substring of Validate's error; "" for valid
	}{
		{"", 2 * time.Minute, ""},
		{"30s", 30 * time.Second, ""},
		{"1h", time.Hour, ""},
		{"0s", 0, `mirror.keep_recent: must be positive, got "0s"`},
		{"-1m", 0, `mirror.keep_recent: must not be negative, got "-1m"`},
		{"2 minutes", 0, `mirror.keep_recent: invalid duration "2 minutes"`},
	} {
		c := Config{Upstreams: up, KeepRecent: tc.in}
		err := c.Validate()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("Validate(keep_recent %q) = %v, want nil", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("Validate(keep_recent %q) = %v, want an error containing %q", tc.in, err, tc.err)
		case err == nil:
			if got := c.keepRecent(2 * time.Minute); got != tc.want {
				t.Errorf("keepRecent(%q) = %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}
