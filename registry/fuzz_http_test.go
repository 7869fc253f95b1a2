package registry

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzHandler sends arbitrary requests through the whole handler: nothing
// may panic, every 4xx on the API carries the OCI error envelope, and the
// registry still serves a manifest no request touched.
func FuzzHandler(f *testing.F) {
	srv, st := newTestServer(f)
	fx := seed(f, srv.URL)
	// keep/app is never a fuzzed request's target: it must survive them all.
	pushBlob(f, srv.URL, "keep/app", fx.config)
	pushBlob(f, srv.URL, "keep/app", fx.layer)
	pushManifest(f, srv.URL, "keep/app", "v1", ociManifest, fx.image)
	h := New(st)
	seeds := []struct{ method, path, header, body string }{
		{"GET", "/v2/team/app/manifests/v1", "", ""},
		{"PUT", "/v2/team/app/manifests/x", "application/vnd.oci.image.manifest.v1+json", fx.image},
		{"PUT", "/v2/team/app/manifests/x", "application/vnd.oci.image.index.v1+json", `{"schemaVersion":2,"manifests":[{}]}`},
		{"POST", "/v2/team/app/blobs/uploads/?digest=sha256:abc", "", "data"},
		{"PATCH", "/v2/team/app/blobs/uploads/0123456789abcdef0123456789abcdef", "0-3", "data"},
		{"GET", "/v2/team/app/blobs/" + string(fx.layerD), "bytes=-1", ""},
		{"GET", "/v2/_catalog?n=-5&last=%zz", "", ""},
		{"DELETE", "/v2/team/app/referrers/sha256:" + strings.Repeat("0", 64), "", ""},
		{"GET", "/v2/team/app/tags/list?n=99999999999999999999", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.header, s.body)
	}
	f.Fuzz(func(t *testing.T, method, path, header, body string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		if strings.Contains(strings.ToLower(path), "keep") {
			return
		}
		req, err := http.NewRequest(method, "http://registry"+path, strings.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("Content-Type", header)
		req.Header.Set("Content-Range", header)
		req.Header.Set("Range", header)
		req.Header.Set("Accept", header)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s = %d %s", method, path, w.Code, w.Body)
		}
		if w.Code >= 400 && method != http.MethodHead && strings.HasPrefix(req.URL.Path, "/v2/") {
			var eb errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || len(eb.Errors) == 0 || eb.Errors[0].Code == "" {
				t.Fatalf("%s %s = %d with body %q, want the OCI error envelope", method, path, w.Code, w.Body)
			}
		}
		check := httptest.NewRecorder()
		h.ServeHTTP(check, httptest.NewRequest("GET", "/v2/keep/app/manifests/v1", nil))
		if check.Code != http.StatusOK || check.Body.String() != fx.image {
			t.Fatalf("after %s %s the seeded manifest = %d", method, path, check.Code)
		}
	})
}
