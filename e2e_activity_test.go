package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// startServerWithAlice starts a registry with auth on and one user,
// alice (password alice-secret), who may do anything to team/**.
func startServerWithAlice(t *testing.T) *e2eServer {
	t.Helper()
	return startServerWith(t, aliceAuth())
}

// aliceAuth is the [auth] section of startServerWithAlice.
func aliceAuth() string {
	hash, _ := bcrypt.GenerateFromPassword([]byte("alice-secret"), bcrypt.MinCost)
	return fmt.Sprintf(`
[auth]
[[auth.users]]
name = "alice"
password = %q
[[auth.rules]]
users = ["alice"]
permissions = ["*:team/**"]
`, hash)
}

// TestE2EActivity: a client's push, its token and a wrong password reach
// the audit record of the real server, survive a graceful restart, and
// the day's storage totals are recorded at start.
func TestE2EActivity(t *testing.T) {
	s := startServerWithAlice(t)
	img, _ := random.Image(2048, 2)
	ref, _ := name.ParseReference(s.host()+"/team/app:v1", name.Insecure)
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-secret"})); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	wrong := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("alice:not-her-password"))}}
	if resp, _ := s.do(t, "GET", "/v2/", wrong, nil); resp.StatusCode != 401 {
		t.Fatalf("GET /v2/ with a wrong password = %d, want 401", resp.StatusCode)
	}
	s.restart() // the writer's queue is written at shutdown

	alice := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("alice:alice-secret"))}}
	resp, body := s.do(t, "GET", "/api/v1/activity", alice, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/v1/activity = %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{
		`"kind":"push","identity":"alice","identityKind":"user","repository":"team/app","reference":"v1","digest":"` + digest.String(),
		`"kind":"token","identity":"alice"`, `"detail":"repository:team/app:push,pull"`,
		`"kind":"failed","identity":"alice","identityKind":"user"`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("GET /api/v1/activity = %s, want it to contain %s", body, want)
		}
	}
	if strings.Contains(string(body), "secret") || strings.Contains(string(body), "not-her-password") {
		t.Errorf("GET /api/v1/activity = %s holds a password", body)
	}
	resp, body = s.do(t, "GET", "/api/v1/storage/history", alice, nil)
	var h struct {
		Days []struct {
			Date  string
			Bytes int64
		}
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &h) != nil || len(h.Days) != 1 || h.Days[0].Date != time.Now().UTC().Format(time.DateOnly) {
		t.Errorf("GET /api/v1/storage/history = %d %s, want today only", resp.StatusCode, body)
	}
}

// TestE2EOverviewRemotes: the overview of a server that is a mirror and
// a replication source shows the mirror's hits and misses after a pull
// through it, and the queue of a push target that is down.
func TestE2EOverviewRemotes(t *testing.T) {
	up, target := startServer(t), startServer(t)
	img := pushRandom(t, up, "team/app:v1", 4<<10, 2)
	s := startServerWith(t, fmt.Sprintf(`
[[mirror.upstreams]]
name = "upstream"
url = "http://%s"
insecure = true
hosts = ["registry.example"]
`, up.host())+pushTarget("central", target.host()))
	target.stop()
	pushRandom(t, s, "team/app:v2", 4<<10, 1)
	for range 2 {
		pullWhole(t, s.ref(t, "registry.example/team/app:v1"), img)
	}
	var o struct {
		Mirror struct {
			Hits, Misses uint64
			HitRatio     float64
		}
		Replication []struct {
			Name      string
			Queued    uint64
			LastError string
		}
	}
	eventually(t, "the overview's mirror and replication figures", func() error {
		resp, body := s.do(t, "GET", "/api/v1/overview", nil, nil)
		if resp.StatusCode != 200 || json.Unmarshal(body, &o) != nil {
			return fmt.Errorf("GET /api/v1/overview = %d %s", resp.StatusCode, body)
		}
		if o.Mirror.Hits == 0 || o.Mirror.Misses == 0 || o.Mirror.HitRatio <= 0 || o.Mirror.HitRatio >= 1 {
			return fmt.Errorf("mirror = %+v, want hits and misses", o.Mirror)
		}
		if len(o.Replication) != 1 || o.Replication[0].Name != "central" || o.Replication[0].Queued != 1 || o.Replication[0].LastError == "" {
			return fmt.Errorf("replication = %+v, want central with 1 queued and an error", o.Replication)
		}
		return nil
	})
}
