package replicate

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := Remote{Name: "c", URL: "https://c.example.com"}
	with := func(f func(*Remote)) Config {
		r := ok
		f(&r)
		return Config{Push: []Push{{Remote: r}}}
	}
	for _, tt := range []struct {
		c    Config
		want string // substring of the error; "" means valid
	}{
		{Config{Push: []Push{{Remote: ok}}, Pull: []Pull{{Remote: Remote{Name: "d", URL: "http://10.0.0.1:5000", Insecure: true}, Interval: "1s", Newest: 2}}}, ""},
		{with(func(r *Remote) { r.Name = "" }), "replicate.push[0].name: must be set"},
		{with(func(r *Remote) { r.Name = "initial-sync:c" }), `replicate.push[0].name: "initial-sync:c": use letters`},
		{with(func(r *Remote) { r.URL = "c.example.com" }), "replicate.push[0].url: want https://host[:port]"},
		{with(func(r *Remote) { r.URL = "https://c.example.com/team" }), "want scheme://host[:port] only"},
		{with(func(r *Remote) { r.URL = "http://c.example.com" }), "set replicate.push[0].insecure = true"},
		{with(func(r *Remote) { r.Username = "u" }), "replicate.push[0].username, replicate.push[0].password: set both"},
		{with(func(r *Remote) { r.Repositories = []string{"team/[a"} }), "replicate.push[0].repositories"},
		{with(func(r *Remote) { r.ToPrefix = "Edge" }), `replicate.push[0].to_prefix: "Edge"`},
		{with(func(r *Remote) { r.MaxRate = "2MiB" }), `replicate.push[0].max_rate: "2MiB" is not a rate`},
		{with(func(r *Remote) { r.Window = "25:00-01:00" }), `replicate.push[0].window`},
		{with(func(r *Remote) { r.Concurrency = -1 }), "replicate.push[0].concurrency"},
		{Config{Pull: []Pull{{Remote: ok, Interval: "0s"}}}, "replicate.pull[0].interval"},
		{Config{Pull: []Pull{{Remote: ok, Newest: -1}}}, "replicate.pull[0].newest"},
		{Config{Pull: []Pull{{Remote: ok, Platforms: []string{"linux"}}}}, `replicate.pull[0].platforms: platform "linux"`},
		{with(func(r *Remote) { r.CAFile = "/nonexistent/ca.pem" }), "replicate.push[0].ca_file"},
		{Config{Push: []Push{{Remote: ok}, {Remote: ok}}}, `replicate.push[1].name: "c" is also the name of replicate.push[0]`},
	} {
		err := tt.c.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.c, err, tt.want)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "0": 0, "2MiB/s": 2 << 20, "500KB/s": 500_000, "100/s": 100} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"2MiB", "fast/s", "-1/s"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) succeeded, want an error", in)
		}
	}
}

func TestWindow(t *testing.T) {
	at := func(hhmm string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", "2026-03-10 "+hhmm, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tt := range []struct {
		window, now string
		want        time.Duration
	}{
		{"", "12:00", 0},
		{"01:00-05:00", "01:00", 0},
		{"01:00-05:00", "04:59", 0},
		{"01:00-05:00", "05:00", 20 * time.Hour},
		{"01:00-05:00", "00:30", 30 * time.Minute},
		{"22:00-06:00", "23:00", 0},
		{"22:00-06:00", "03:00", 0},
		{"22:00-06:00", "06:00", 16 * time.Hour},
		{"22:00-06:00", "21:45", 15 * time.Minute},
	} {
		w, err := ParseWindow(tt.window)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Until(at(tt.now)); got != tt.want {
			t.Errorf("ParseWindow(%q).Until(%s) = %v, want %v", tt.window, tt.now, got, tt.want)
		}
	}
	for _, bad := range []string{"1-5", "01:00-05:00x", "01:00-01:00", "24:00-01:00", "01:60-02:00", "01:00 - 05:00"} {
		if _, err := ParseWindow(bad); err == nil {
			t.Errorf("ParseWindow(%q) succeeded, want an error", bad)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: time.Second, Max: time.Minute}
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute} {
		if d := b.Next(); d < want/2 || d > want {
			t.Errorf("Backoff.Next() #%d = %v, want in [%v, %v]", i, d, want/2, want)
		}
	}
	b.Reset()
	if d := b.Next(); d > time.Second {
		t.Errorf("Backoff.Next() after Reset = %v, want at most 1s", d)
	}
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"": 0, "7": 7 * time.Second, "nonsense": 0, "-3": 0, "999999": maxRetryAfter,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestNewest(t *testing.T) {
	s, _ := NewSelection(nil, []string{"v*"})
	s.Newest(3)
	tags := []string{"latest", "v1.10", "v1.2", "v1.9", "v10.0", "v2.0", "sha256-" + strings.Repeat("a", 64) + ".sig"}
	got := s.Tags(tags)
	if strings.Join(got, " ") != "v1.10 v2.0 v10.0" {
		t.Errorf("Tags(%v) with Newest(3) = %v, want [v1.10 v2.0 v10.0]", tags, got)
	}
	for _, tt := range []struct {
		a, b string
		want int
	}{{"v1.9", "v1.10", -1}, {"1.0", "1.0", 0}, {"v2", "v10", -1}, {"1.01", "1.1", 0}, {"1.0-rc1", "1.0", 1}, {"b", "a", 1}} {
		if got := compareVersions(tt.a, tt.b); sign(got) != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want sign %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// TestRemoteCAFile: a remote whose certificate a private CA signed is
// reached with ca_file, and refused without it.
func TestRemoteCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{ca, ""} {
		e, err := Remote{Name: "c", URL: srv.URL, CAFile: file}.endpoint(nil)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", srv.URL+"/v2/", nil)
		resp, err := e.Transport.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		if (err == nil) != (file != "") {
			t.Errorf("GET /v2/ with ca_file %q = %v", file, err)
		}
	}
}
