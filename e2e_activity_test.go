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
	hash, _ := bcrypt.GenerateFromPassword([]byte("alice-secret"), bcrypt.MinCost)
	return startServerWith(t, fmt.Sprintf(`
[auth]
[[auth.users]]
name = "alice"
password = %q
[[auth.rules]]
users = ["alice"]
permissions = ["*:team/**"]
`, hash))
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
		`"kind":"push","identity":"alice","identityKind":"token","repository":"team/app","reference":"v1","digest":"` + digest.String(),
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
