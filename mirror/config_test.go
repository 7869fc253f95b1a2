package mirror

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	hub := func() Upstream {
		return Upstream{Name: "hub", URL: "https://registry-1.docker.io", Hosts: []string{"docker.io", "index.docker.io"}}
	}
	ghcr := Upstream{Name: "ghcr", URL: "https://ghcr.io", Hosts: []string{"ghcr.io"}}
	with := func(f func(*Upstream)) Upstream { u := hub(); f(&u); return u }
	badCA := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(badCA, []byte("not pem"), 0o600)
	for _, tc := range []struct {
		name string
		ups  []Upstream
		want string // substring of the error; "" for valid
	}{
		{"empty", nil, ""},
		{"two upstreams", []Upstream{hub(), ghcr}, ""},
		{"http with insecure", []Upstream{with(func(u *Upstream) { u.URL, u.Insecure = "http://10.0.0.1:5000", true })}, ""},
		{"revalidate zero", []Upstream{with(func(u *Upstream) { u.Revalidate = "0s" })}, ""},
		{"max size", []Upstream{with(func(u *Upstream) { u.MaxSize = "20GiB" })}, ""},
		{"max size zero", []Upstream{with(func(u *Upstream) { u.MaxSize = "0" })}, ""},
		{"credentials", []Upstream{with(func(u *Upstream) { u.Username, u.Password = "bob", "s3cret" })}, ""},
		{"no name", []Upstream{with(func(u *Upstream) { u.Name = "" })}, "mirror.upstreams[0].name: must be set"},
		{"duplicate name", []Upstream{hub(), with(func(u *Upstream) { u.Hosts = []string{"x.io"} })}, "mirror.upstreams[1].name:"},
		{"no url", []Upstream{with(func(u *Upstream) { u.URL = "" })}, "mirror.upstreams[0].url: must be set"},
		{"url scheme", []Upstream{with(func(u *Upstream) { u.URL = "ftp://x" })}, "mirror.upstreams[0].url: scheme"},
		{"url path", []Upstream{with(func(u *Upstream) { u.URL = "https://x.io/v2" })}, "mirror.upstreams[0].url: want scheme://host"},
		{"url userinfo", []Upstream{with(func(u *Upstream) { u.URL = "https://a:b@x.io" })}, "mirror.upstreams[0].url: want scheme://host"},
		{"http without insecure", []Upstream{ghcr, with(func(u *Upstream) { u.URL = "http://x.io" })}, "mirror.upstreams[1].url: \"http://x.io\" is plain http"},
		{"insecure https", []Upstream{with(func(u *Upstream) { u.Insecure = true })}, "mirror.upstreams[0].insecure:"},
		{"no hosts", []Upstream{with(func(u *Upstream) { u.Hosts = nil })}, "mirror.upstreams[0].hosts: must name"},
		{"host with port", []Upstream{with(func(u *Upstream) { u.Hosts = []string{"localhost:5000"} })}, "mirror.upstreams[0].hosts: \"localhost:5000\""},
		{"host uppercase", []Upstream{with(func(u *Upstream) { u.Hosts = []string{"Docker.io"} })}, "mirror.upstreams[0].hosts:"},
		{"host shared", []Upstream{hub(), {Name: "b", URL: "https://b.io", Hosts: []string{"docker.io"}}}, "mirror.upstreams[1].hosts: \"docker.io\" is also a host of mirror.upstreams[0]"},
		{"half credentials", []Upstream{with(func(u *Upstream) { u.Username = "bob" })}, "mirror.upstreams[0].username, mirror.upstreams[0].password: set both"},
		{"missing ca", []Upstream{with(func(u *Upstream) { u.CAFile = "/nonexistent.pem" })}, "mirror.upstreams[0].ca_file:"},
		{"bad ca", []Upstream{with(func(u *Upstream) { u.CAFile = badCA })}, "no PEM certificate in it"},
		{"bad revalidate", []Upstream{with(func(u *Upstream) { u.Revalidate = "5 minutes" })}, "mirror.upstreams[0].revalidate: invalid duration"},
		{"bad max size", []Upstream{with(func(u *Upstream) { u.MaxSize = "20 gigs" })}, "mirror.upstreams[0].max_size: \"20 gigs\" is not a size"},
		{"negative revalidate", []Upstream{with(func(u *Upstream) { u.Revalidate = "-1s" })}, "mirror.upstreams[0].revalidate: must not be negative"},
		{"time limits", []Upstream{with(func(u *Upstream) {
			u.Timeout, u.RevalidateTimeout, u.BlobIdleTimeout, u.StaleRetry = "1m", "5s", "10m", "30s"
		})}, ""},
		{"bad timeout", []Upstream{with(func(u *Upstream) { u.Timeout = "30" })}, "mirror.upstreams[0].timeout: invalid duration"},
		{"zero timeout", []Upstream{with(func(u *Upstream) { u.Timeout = "0s" })}, "mirror.upstreams[0].timeout: must be positive"},
		{"negative revalidate timeout", []Upstream{with(func(u *Upstream) { u.RevalidateTimeout = "-5s" })}, "mirror.upstreams[0].revalidate_timeout: must not be negative"},
		{"zero blob idle timeout", []Upstream{with(func(u *Upstream) { u.BlobIdleTimeout = "0" })}, "mirror.upstreams[0].blob_idle_timeout: must be positive"},
		{"zero stale retry", []Upstream{with(func(u *Upstream) { u.StaleRetry = "0ms" })}, "mirror.upstreams[0].stale_retry: must be positive"},
		{"two defaults", []Upstream{with(func(u *Upstream) { u.Default = true }), {Name: "g", URL: "https://ghcr.io", Hosts: []string{"ghcr.io"}, Default: true}}, "mirror.upstreams[1].default:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Config{Upstreams: tc.ups}.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestRevalidateInterval(t *testing.T) {
	for in, want := range map[string]time.Duration{"": DefaultRevalidate, "0s": 0, "1h": time.Hour} {
		if got := (Upstream{Revalidate: in}).RevalidateInterval(); got != want {
			t.Errorf("RevalidateInterval(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestConfigMaxSize(t *testing.T) {
	if err := (Config{MaxSize: "100GiB"}).Validate(); err != nil {
		t.Errorf("Validate(max_size 100GiB) = %v, want nil", err)
	}
	if got, want := (Config{MaxSize: "1KiB"}).MaxBytes(), int64(1024); got != want {
		t.Errorf("MaxBytes(1KiB) = %d, want %d", got, want)
	}
	err := Config{MaxSize: "lots"}.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "mirror.max_size: ") {
		t.Errorf("Validate(max_size lots) = %v, want an error naming mirror.max_size", err)
	}
}

func TestTimeLimits(t *testing.T) {
	set := Upstream{Timeout: "1m", RevalidateTimeout: "5s", BlobIdleTimeout: "10m", StaleRetry: "30s"}
	for _, tc := range []struct {
		name      string
		got, want time.Duration
	}{
		{"timeout", (&Upstream{}).fetchTimeout(), DefaultTimeout},
		{"revalidate_timeout", (&Upstream{}).revalidateTimeout(), DefaultRevalidateTimeout},
		{"blob_idle_timeout", (&Upstream{}).blobIdleTimeout(), DefaultBlobIdleTimeout},
		{"stale_retry", (&Upstream{}).staleRetry(), DefaultStaleRetry},
		{"timeout set", set.fetchTimeout(), time.Minute},
		{"revalidate_timeout set", set.revalidateTimeout(), 5 * time.Second},
		{"blob_idle_timeout set", set.blobIdleTimeout(), 10 * time.Minute},
		{"stale_retry set", set.staleRetry(), 30 * time.Second},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}
