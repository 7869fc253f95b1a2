package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// call is one HTTP request of a table test and what must come back.
type call struct {
	name       string
	method     string
	path       string
	header     map[string]string
	body       string
	wantStatus int
	wantCode   string            // OCI error code, if an error is expected
	wantHeader map[string]string // exact values; "*" means present
	wantBody   string            // exact body, if set
}

func (c call) run(t testing.TB, base string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != c.wantStatus {
		t.Errorf("%s %s = %d %s, want %d", c.method, c.path, resp.StatusCode, body, c.wantStatus)
	}
	if c.wantCode != "" {
		var eb errorBody
		if err := json.Unmarshal(body, &eb); err != nil || len(eb.Errors) == 0 || eb.Errors[0].Code != c.wantCode {
			t.Errorf("%s %s: body %s, want error code %s", c.method, c.path, body, c.wantCode)
		}
	}
	for k, v := range c.wantHeader {
		got := resp.Header.Get(k)
		if (v == "*" && got == "") || (v != "*" && got != v) {
			t.Errorf("%s %s: header %s = %q, want %q", c.method, c.path, k, got, v)
		}
	}
	if c.wantBody != "" && string(body) != c.wantBody {
		t.Errorf("%s %s: body = %q, want %q", c.method, c.path, body, c.wantBody)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

func runCalls(t *testing.T, base string, calls []call) {
	t.Helper()
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) { c.run(t, base) })
	}
}

// fixture is content pushed before the table runs.
type fixture struct {
	config, layer, other string // blob contents
	configD, layerD      digest.Digest
	image, index, art    string // manifest bodies
	imageD, indexD, artD digest.Digest
}

const (
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	ociIndex    = "application/vnd.oci.image.index.v1+json"
	ociEmpty    = "application/vnd.oci.empty.v1+json"
)

func imageManifest(config, layer digest.Digest, configSize, layerSize int, extra string) string {
	return fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]%s}`,
		ociManifest, config, configSize, layer, layerSize, extra)
}

func pushBlob(t testing.TB, base, repo, content string) digest.Digest {
	t.Helper()
	d := digest.FromString(content)
	call{method: "POST", path: "/v2/" + repo + "/blobs/uploads/?digest=" + string(d), body: content, wantStatus: 201}.run(t, base)
	return d
}

func pushManifest(t testing.TB, base, repo, ref, mediaType, body string) {
	t.Helper()
	call{method: "PUT", path: "/v2/" + repo + "/manifests/" + ref, header: map[string]string{"Content-Type": mediaType}, body: body, wantStatus: 201}.run(t, base)
}

func seed(t testing.TB, base string) fixture {
	var f fixture
	f.config, f.layer, f.other = `{"architecture":"amd64","os":"linux"}`, "layer-bytes-0123456789", "other-repo-only"
	f.configD = pushBlob(t, base, "team/app", f.config)
	f.layerD = pushBlob(t, base, "team/app", f.layer)
	pushBlob(t, base, "other/repo", f.other)
	f.image = imageManifest(f.configD, f.layerD, len(f.config), len(f.layer), "")
	f.imageD = digest.FromString(f.image)
	pushManifest(t, base, "team/app", "v1", ociManifest, f.image)
	f.index = fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d,"platform":{"architecture":"amd64","os":"linux"}}]}`,
		ociIndex, ociManifest, f.imageD, len(f.image))
	f.indexD = digest.FromString(f.index)
	pushManifest(t, base, "team/app", "multi", ociIndex, f.index)
	pushBlob(t, base, "team/app", "{}")
	f.art = fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":"application/vnd.example.sbom","config":{"mediaType":%q,"digest":%q,"size":2},"layers":[],"subject":{"mediaType":%q,"digest":%q,"size":%d},"annotations":{"org.example":"yes"}}`,
		ociManifest, ociEmpty, digest.FromString("{}"), ociManifest, f.imageD, len(f.image))
	f.artD = digest.FromString(f.art)
	pushManifest(t, base, "team/app", string(f.artD), ociManifest, f.art)
	return f
}

func TestAPIRead(t *testing.T) {
	srv, _ := newTestServer(t)
	f := seed(t, srv.URL)
	missing := digest.FromString("missing")
	runCalls(t, srv.URL, []call{
		{name: "base", method: "GET", path: "/v2/", wantStatus: 200, wantHeader: map[string]string{"Docker-Distribution-Api-Version": "registry/2.0"}},
		{name: "manifest by tag", method: "GET", path: "/v2/team/app/manifests/v1", wantStatus: 200, wantBody: f.image,
			wantHeader: map[string]string{"Content-Type": ociManifest, "Docker-Content-Digest": string(f.imageD)}},
		{name: "manifest head", method: "HEAD", path: "/v2/team/app/manifests/v1", wantStatus: 200,
			wantHeader: map[string]string{"Content-Length": fmt.Sprint(len(f.image)), "Docker-Content-Digest": string(f.imageD)}},
		{name: "manifest by digest", method: "GET", path: "/v2/team/app/manifests/" + string(f.imageD), wantStatus: 200, wantBody: f.image},
		{name: "index", method: "GET", path: "/v2/team/app/manifests/multi", wantStatus: 200, wantHeader: map[string]string{"Content-Type": ociIndex}},
		{name: "accept excludes", method: "GET", path: "/v2/team/app/manifests/multi", header: map[string]string{"Accept": ociManifest}, wantStatus: 404, wantCode: "MANIFEST_UNKNOWN"},
		{name: "accept includes", method: "GET", path: "/v2/team/app/manifests/multi", header: map[string]string{"Accept": ociManifest + ", " + ociIndex}, wantStatus: 200},
		{name: "accept wildcard", method: "GET", path: "/v2/team/app/manifests/multi", header: map[string]string{"Accept": "*/*"}, wantStatus: 200},
		{name: "manifest unknown tag", method: "GET", path: "/v2/team/app/manifests/nope", wantStatus: 404, wantCode: "MANIFEST_UNKNOWN"},
		{name: "manifest unknown digest", method: "GET", path: "/v2/team/app/manifests/" + string(missing), wantStatus: 404, wantCode: "MANIFEST_UNKNOWN"},
		{name: "manifest unknown repo", method: "GET", path: "/v2/no/such/manifests/v1", wantStatus: 404, wantCode: "MANIFEST_UNKNOWN"},
		{name: "manifest bad digest", method: "GET", path: "/v2/team/app/manifests/sha256:baddigeststring", wantStatus: 400, wantCode: "DIGEST_INVALID"},
		{name: "manifest bad tag", method: "GET", path: "/v2/team/app/manifests/.bad", wantStatus: 400, wantCode: "TAG_INVALID"},
		{name: "blob", method: "GET", path: "/v2/team/app/blobs/" + string(f.layerD), wantStatus: 200, wantBody: f.layer,
			wantHeader: map[string]string{"Docker-Content-Digest": string(f.layerD), "Content-Type": "application/octet-stream"}},
		{name: "blob head", method: "HEAD", path: "/v2/team/app/blobs/" + string(f.layerD), wantStatus: 200,
			wantHeader: map[string]string{"Content-Length": fmt.Sprint(len(f.layer))}},
		{name: "blob range", method: "GET", path: "/v2/team/app/blobs/" + string(f.layerD), header: map[string]string{"Range": "bytes=6-10"},
			wantStatus: 206, wantBody: "bytes", wantHeader: map[string]string{"Content-Range": fmt.Sprintf("bytes 6-10/%d", len(f.layer))}},
		{name: "blob open range", method: "GET", path: "/v2/team/app/blobs/" + string(f.layerD), header: map[string]string{"Range": "bytes=12-"}, wantStatus: 206, wantBody: "0123456789"},
		{name: "blob suffix range", method: "GET", path: "/v2/team/app/blobs/" + string(f.layerD), header: map[string]string{"Range": "bytes=-4"}, wantStatus: 206, wantBody: "6789"},
		{name: "blob range past end", method: "GET", path: "/v2/team/app/blobs/" + string(f.layerD), header: map[string]string{"Range": "bytes=5000-10000"}, wantStatus: 416, wantCode: "RANGE_INVALID",
			wantHeader: map[string]string{"Content-Range": fmt.Sprintf("bytes */%d", len(f.layer))}},
		{name: "blob range reversed", method: "GET", path: "/v2/team/app/blobs/" + string(f.layerD), header: map[string]string{"Range": "bytes=10-2"}, wantStatus: 416},
		{name: "blob of other repo", method: "GET", path: "/v2/team/app/blobs/" + string(digest.FromString(f.other)), wantStatus: 404, wantCode: "BLOB_UNKNOWN"},
		{name: "blob unknown", method: "HEAD", path: "/v2/team/app/blobs/" + string(missing), wantStatus: 404},
		{name: "blob bad digest", method: "GET", path: "/v2/team/app/blobs/sha256:xyz", wantStatus: 400, wantCode: "DIGEST_INVALID"},
		{name: "blob unsupported algorithm", method: "GET", path: "/v2/team/app/blobs/sha384:" + strings.Repeat("a", 96), wantStatus: 400, wantCode: "DIGEST_INVALID"},
		{name: "tags", method: "GET", path: "/v2/team/app/tags/list", wantStatus: 200, wantBody: `{"name":"team/app","tags":["multi","v1"]}`},
		{name: "tags page", method: "GET", path: "/v2/team/app/tags/list?n=1", wantStatus: 200, wantBody: `{"name":"team/app","tags":["multi"]}`,
			wantHeader: map[string]string{"Link": `</v2/team/app/tags/list?last=multi&n=1>; rel="next"`}},
		{name: "tags last", method: "GET", path: "/v2/team/app/tags/list?last=multi", wantStatus: 200, wantBody: `{"name":"team/app","tags":["v1"]}`},
		{name: "tags n=0", method: "GET", path: "/v2/team/app/tags/list?n=0", wantStatus: 200, wantBody: `{"name":"team/app","tags":[]}`},
		{name: "tags bad n", method: "GET", path: "/v2/team/app/tags/list?n=-1", wantStatus: 400, wantCode: "PAGINATION_NUMBER_INVALID"},
		{name: "tags unknown repo", method: "GET", path: "/v2/no/such/tags/list", wantStatus: 404, wantCode: "NAME_UNKNOWN"},
		{name: "catalog", method: "GET", path: "/v2/_catalog", wantStatus: 200, wantBody: `{"repositories":["other/repo","team/app"]}`},
		{name: "catalog page", method: "GET", path: "/v2/_catalog?n=1", wantStatus: 200, wantBody: `{"repositories":["other/repo"]}`,
			wantHeader: map[string]string{"Link": `</v2/_catalog?last=other%2Frepo&n=1>; rel="next"`}},
		{name: "catalog last", method: "GET", path: "/v2/_catalog?last=other/repo&n=5", wantStatus: 200, wantBody: `{"repositories":["team/app"]}`},
		{name: "referrers", method: "GET", path: "/v2/team/app/referrers/" + string(f.imageD), wantStatus: 200,
			wantBody:   fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d,"annotations":{"org.example":"yes"},"artifactType":"application/vnd.example.sbom"}]}`, ociIndex, ociManifest, f.artD, len(f.art)),
			wantHeader: map[string]string{"Content-Type": ociIndex}},
		{name: "referrers filtered", method: "GET", path: "/v2/team/app/referrers/" + string(f.imageD) + "?artifactType=application/x-none", wantStatus: 200,
			wantBody: fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[]}`, ociIndex), wantHeader: map[string]string{"OCI-Filters-Applied": "artifactType"}},
		{name: "referrers none", method: "GET", path: "/v2/no/such/referrers/" + string(missing), wantStatus: 200,
			wantBody: fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[]}`, ociIndex)},
		{name: "referrers bad digest", method: "GET", path: "/v2/team/app/referrers/sha256:nope", wantStatus: 400, wantCode: "DIGEST_INVALID"},
		{name: "name uppercase", method: "GET", path: "/v2/Team/app/manifests/v1", wantStatus: 400, wantCode: "NAME_INVALID"},
		{name: "name dotdot", method: "GET", path: "/v2/team/../app/manifests/v1", wantStatus: 400, wantCode: "NAME_INVALID"},
		{name: "name escaped slash", method: "GET", path: "/v2/team%2Fapp/manifests/v1", wantStatus: 400, wantCode: "NAME_INVALID"},
		{name: "name too long", method: "GET", path: "/v2/" + strings.Repeat("a", 256) + "/tags/list", wantStatus: 400, wantCode: "NAME_INVALID"},
		{name: "name double slash", method: "GET", path: "/v2/team//app/tags/list", wantStatus: 400, wantCode: "NAME_INVALID"},
		{name: "tag too long", method: "GET", path: "/v2/team/app/manifests/" + strings.Repeat("t", 129), wantStatus: 400, wantCode: "TAG_INVALID"},
		{name: "unknown endpoint", method: "GET", path: "/v2/team/app/nothing/here", wantStatus: 404, wantCode: "NOT_FOUND"},
		{name: "method not allowed", method: "POST", path: "/v2/team/app/tags/list", wantStatus: 405, wantCode: "UNSUPPORTED"},
		{name: "healthz", method: "GET", path: "/healthz", wantStatus: 200},
		{name: "readyz", method: "GET", path: "/readyz", wantStatus: 200},
	})
}
