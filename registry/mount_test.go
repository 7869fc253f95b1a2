package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/storage"
)

// lockedBuffer is a log sink shared by concurrent requests.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// take returns the lines logged since the last call, without the access
// log's one line per request.
func (b *lockedBuffer) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l != "" && !strings.Contains(l, `"message":"request"`) {
			out = append(out, l)
		}
	}
	b.buf.Reset()
	return out
}

// linkEverywhere links blob d of repository from into n more repositories,
// other/0000 onwards, with concurrent mounts the store batches into few
// transactions.
func linkEverywhere(t testing.TB, st *storage.Store, from string, d digest.Digest, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := st.MountBlob(context.Background(), from, fmt.Sprintf("other/%04d", i), d); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// basic is the Authorization header of user with password pw.
func basic(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

// aliceBasic is the Authorization header of alice, password alice-pw.
var aliceBasic = basic("alice", "alice-pw")

// authServer serves st behind the real token service: each user's
// password is their name with "-pw", and rules say what they may do. The
// service and the registry log to log.
func authServer(t testing.TB, st *storage.Store, log zerolog.Logger, users []string, rules ...auth.RuleConfig) *httptest.Server {
	t.Helper()
	cfg := auth.DefaultConfig()
	for _, u := range users {
		hash, _ := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		cfg.Users = append(cfg.Users, auth.UserConfig{Name: u, Password: string(hash)})
	}
	cfg.Rules = rules
	svc, err := auth.New(cfg, t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(st, WithAuthorizer(svc), WithLogger(log)))
	t.Cleanup(func() { srv.Close(); st.Close() })
	return srv
}

// manyReposRegistry serves a store of n+1 repositories that all link one
// blob, where alice may push and pull team/** and nothing else. Both the
// token service and the registry log to the returned buffer.
func manyReposRegistry(t testing.TB, n int) (*httptest.Server, *lockedBuffer, digest.Digest) {
	t.Helper()
	st, err := storage.Open(context.Background(), storage.Config{Driver: "filesystem", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	content := "shared layer"
	d := digest.FromString(content)
	if _, err := st.PutBlob(context.Background(), "team/src", d, int64(len(content)), strings.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	linkEverywhere(t, st, "team/src", d, n)
	logs := &lockedBuffer{}
	srv := authServer(t, st, zerolog.New(logs).Level(zerolog.DebugLevel), []string{"alice"},
		auth.RuleConfig{Users: []string{"alice"}, Permissions: []string{"pull:team/**", "push:team/**"}})
	return srv, logs, d
}

// TestMountAndCatalogCostWhatCallerSees: with thousands of repositories
// the caller may not read, a mount without from= and the catalog each log
// at most one line, and still find what the caller may read.
func TestMountAndCatalogCostWhatCallerSees(t *testing.T) {
	srv, logs, d := manyReposRegistry(t, 3000)
	logs.take()
	call{method: "POST", path: "/v2/team/app/blobs/uploads/?mount=" + string(d), header: map[string]string{"Authorization": aliceBasic},
		wantStatus: 201, wantHeader: map[string]string{"Location": "/v2/team/app/blobs/" + string(d)}}.run(t, srv.URL)
	if lines := logs.take(); len(lines) > 1 {
		t.Errorf("mount without from logged %d lines, want at most 1; first: %s", len(lines), lines[0])
	} else if len(lines) == 1 && !strings.Contains(lines[0], `"denied":3000`) {
		t.Errorf("mount without from logged %s, want the 3000 skipped repositories summed up", lines[0])
	}
	call{method: "GET", path: "/v2/_catalog", header: map[string]string{"Authorization": aliceBasic},
		wantStatus: 200, wantBody: `{"repositories":["team/app","team/src"]}`}.run(t, srv.URL)
	if lines := logs.take(); len(lines) != 1 || !strings.Contains(lines[0], `"hidden":3000`) {
		t.Errorf("catalog logged %q, want one line that sums up the 3000 hidden repositories", lines)
	}
	// A single decision the caller asked for is still logged when denied.
	call{method: "GET", path: "/v2/other/0001/tags/list", header: map[string]string{"Authorization": aliceBasic}, wantStatus: 403}.run(t, srv.URL)
	if lines := logs.take(); len(lines) != 1 || !strings.Contains(lines[0], "access denied") {
		t.Errorf("denied pull logged %q, want one access denied line", lines)
	}
}

// BenchmarkMountWithoutFrom measures a cross-repository mount without
// from= in a registry of 3,000 repositories the caller cannot read, all
// linking the blob, through the real token service.
func BenchmarkMountWithoutFrom(b *testing.B) {
	srv, _, d := manyReposRegistry(b, 3000)
	b.ResetTimer()
	for b.Loop() {
		alicePosts(b, srv.URL+"/v2/team/app/blobs/uploads/?mount="+string(d), "")
	}
}

// alicePosts sends a POST as alice and expects 201 Created.
func alicePosts(b *testing.B, url, body string) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", aliceBasic)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("POST %s = %d", url, resp.StatusCode)
	}
}

// BenchmarkPushDuringMounts measures a small blob push into an unrelated
// repository while another client keeps mounting without from= in the
// registry of BenchmarkMountWithoutFrom: what a mount holds up.
func BenchmarkPushDuringMounts(b *testing.B) {
	srv, _, d := manyReposRegistry(b, 3000)
	stop := make(chan struct{})
	mounted := make(chan struct{})
	go func() {
		defer close(mounted)
		req, _ := http.NewRequest("POST", srv.URL+"/v2/team/app/blobs/uploads/?mount="+string(d), nil)
		req.Header.Set("Authorization", aliceBasic)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}()
	i := 0
	b.ResetTimer()
	for b.Loop() {
		i++
		content := fmt.Sprintf("layer %d", i)
		alicePosts(b, srv.URL+"/v2/team/other/blobs/uploads/?digest="+string(digest.FromString(content)), content)
	}
	b.StopTimer()
	close(stop)
	<-mounted
}
