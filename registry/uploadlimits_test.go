package registry

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/rs/zerolog"

	"github.com/nora-registry/nora/auth"
	"github.com/nora-registry/nora/storage"
)

// limitedServer serves a store whose [storage] limits set changes, open
// to all.
func limitedServer(t *testing.T, set func(*storage.Config)) *httptest.Server {
	t.Helper()
	cfg := storage.Config{Driver: "filesystem", Root: t.TempDir()}
	set(&cfg)
	st, err := storage.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(st))
	t.Cleanup(func() { srv.Close(); st.Close() })
	return srv
}

func TestUploadLimits(t *testing.T) {
	srv := limitedServer(t, func(c *storage.Config) { c.MaxUploadsPerClient, c.MaxBlobSize = 1, "1KiB" })
	big := strings.Repeat("b", 1025)
	loc := call{method: "POST", path: "/v2/app/blobs/uploads/", wantStatus: 202}.run(t, srv.URL).Header.Get("Location")
	runCalls(t, srv.URL, []call{
		{name: "second session", method: "POST", path: "/v2/app/blobs/uploads/", wantStatus: 429, wantCode: "TOOMANYREQUESTS"},
		{name: "monolithic too large", method: "POST", path: "/v2/app/blobs/uploads/?digest=" + string(digest.FromString(big)), body: big, wantStatus: 413, wantCode: "SIZE_INVALID"},
		{name: "monolithic at the limit", method: "POST", path: "/v2/app/blobs/uploads/?digest=" + string(digest.FromString(big[:1024])), body: big[:1024], wantStatus: 201},
		{name: "chunk past the limit", method: "PATCH", path: loc, header: map[string]string{"Content-Range": "0-1024"}, body: big, wantStatus: 413, wantCode: "SIZE_INVALID"},
		{name: "session cut", method: "GET", path: loc, wantStatus: 404, wantCode: "BLOB_UPLOAD_UNKNOWN"},
	})
	// The place is freed: a new session, then a PUT of the whole body
	// past the limit.
	loc = call{method: "POST", path: "/v2/app/blobs/uploads/", wantStatus: 202}.run(t, srv.URL).Header.Get("Location")
	runCalls(t, srv.URL, []call{
		{name: "put too large", method: "PUT", path: loc + "?digest=" + string(digest.FromString(big)), body: big, wantStatus: 413, wantCode: "SIZE_INVALID"},
		{name: "put's session cut", method: "GET", path: loc, wantStatus: 404, wantCode: "BLOB_UPLOAD_UNKNOWN"},
	})
}

// TestUploadSessionsBelongToTheirOpener: two users who may both push to a
// repository cannot touch each other's upload sessions.
func TestUploadSessionsBelongToTheirOpener(t *testing.T) {
	st, err := storage.Open(context.Background(), storage.Config{Driver: "filesystem", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := authServer(t, st, zerolog.Nop(), []string{"alice", "bob"},
		auth.RuleConfig{Users: []string{"alice", "bob"}, Permissions: []string{"pull:team/**", "push:team/**"}})
	alice := map[string]string{"Authorization": aliceBasic}
	bob := map[string]string{"Authorization": basic("bob", "bob-pw")}
	d := digest.FromString("alice's bytes")

	loc := call{method: "POST", path: "/v2/team/app/blobs/uploads/", header: alice, wantStatus: 202}.run(t, srv.URL).Header.Get("Location")
	runCalls(t, srv.URL, []call{
		{name: "bob status", method: "GET", path: loc, header: bob, wantStatus: 404, wantCode: "BLOB_UPLOAD_UNKNOWN"},
		{name: "bob patch", method: "PATCH", path: loc, header: bob, body: "bob's bytes", wantStatus: 404, wantCode: "BLOB_UPLOAD_UNKNOWN"},
		{name: "bob put", method: "PUT", path: loc + "?digest=" + string(digest.FromString("bob's bytes")), header: bob, body: "bob's bytes", wantStatus: 404, wantCode: "BLOB_UPLOAD_UNKNOWN"},
		{name: "bob delete", method: "DELETE", path: loc, header: bob, wantStatus: 404, wantCode: "BLOB_UPLOAD_UNKNOWN"},
		{name: "alice patch", method: "PATCH", path: loc, header: alice, body: "alice's bytes", wantStatus: 202, wantHeader: map[string]string{"Range": "0-12"}},
		{name: "alice put", method: "PUT", path: loc + "?digest=" + string(d), header: alice, wantStatus: 201},
		{name: "blob whole", method: "GET", path: "/v2/team/app/blobs/" + string(d), header: bob, wantStatus: 200, wantBody: "alice's bytes"},
	})
}
