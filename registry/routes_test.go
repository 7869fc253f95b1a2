package registry

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestSharedHeaderValues: the header values a manifest pull shares with
// other responses, or sets from one array, stay each response's own when
// a later handler or middleware adds to them.
func TestSharedHeaderValues(t *testing.T) {
	srv, st := newTestServer(t)
	f := seed(t, srv.URL)
	h := New(st)
	keys := []string{"Docker-Distribution-Api-Version", "Content-Type", "Docker-Content-Digest", "Etag", "Content-Length", "X-Request-Id"}
	pull := func() http.Header {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/v2/team/app/manifests/v1", nil))
		if w.Code != http.StatusOK {
			t.Fatalf("GET = %d %s", w.Code, w.Body)
		}
		return w.Header()
	}
	first := pull()
	want := map[string]string{
		"Docker-Distribution-Api-Version": "registry/2.0",
		"Content-Type":                    ociManifest,
		"Docker-Content-Digest":           string(f.imageD),
		"Etag":                            `"` + string(f.imageD) + `"`,
		"Content-Length":                  strconv.Itoa(len(f.image)),
	}
	for _, k := range keys {
		first.Add(k, "added")
	}
	for k, v := range want {
		if got := first[k]; !slices.Equal(got, []string{v, "added"}) {
			t.Errorf("first response %s = %q, want %q", k, got, []string{v, "added"})
		}
	}
	second := pull()
	for k, v := range want {
		if got := second[k]; !slices.Equal(got, []string{v}) {
			t.Errorf("second response %s = %q, want %q", k, got, []string{v})
		}
	}
	if id := second.Get("X-Request-Id"); len(second["X-Request-Id"]) != 1 || id == "added" {
		t.Errorf("second response X-Request-Id = %q, want one fresh id", second["X-Request-Id"])
	}
}

// TestManifestHeadersDigests: the ETag and length cut from one string
// are right for both digest algorithms and any size.
func TestManifestHeadersDigests(t *testing.T) {
	for _, d := range []digest.Digest{digest.SHA256.FromString("a"), digest.SHA512.FromString("a")} {
		for _, size := range []int64{0, 7, 1 << 40} {
			hd := http.Header{}
			setManifestHeaders(hd, "application/x-unknown", d, size)
			want := http.Header{
				"Content-Type":          {"application/x-unknown"},
				"Docker-Content-Digest": {string(d)},
				"Etag":                  {`"` + string(d) + `"`},
				"Content-Length":        {strconv.FormatInt(size, 10)},
			}
			for k, v := range want {
				if !slices.Equal(hd[k], v) {
					t.Errorf("setManifestHeaders(%s, %d): %s = %q, want %q", d, size, k, hd[k], v)
				}
			}
		}
	}
}
