package registry

import (
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestAPIUploads(t *testing.T) {
	srv, _ := newTestServer(t)
	base := srv.URL
	data := strings.Repeat("0123456789abcdef", 256) // 4096 bytes
	d := digest.FromString(data)
	d512 := digest.SHA512.FromString(data)

	// Chunked: POST, PATCH in order, out of order → 416, status, PUT.
	resp := call{method: "POST", path: "/v2/up/chunked/blobs/uploads/", header: map[string]string{"Content-Length": "0"}, wantStatus: 202,
		wantHeader: map[string]string{"Range": "0-0", "Location": "*", "Docker-Upload-UUID": "*"}}.run(t, base)
	loc := resp.Header.Get("Location")
	runCalls(t, base, []call{
		{name: "first chunk", method: "PATCH", path: loc, header: map[string]string{"Content-Range": "0-1023"}, body: data[:1024], wantStatus: 202, wantHeader: map[string]string{"Range": "0-1023", "Location": loc}},
		{name: "gap", method: "PATCH", path: loc, header: map[string]string{"Content-Range": "2048-3071"}, body: data[2048:3072], wantStatus: 416, wantCode: "RANGE_INVALID", wantHeader: map[string]string{"Range": "0-1023"}},
		{name: "resend", method: "PATCH", path: loc, header: map[string]string{"Content-Range": "0-1023"}, body: data[:1024], wantStatus: 416},
		{name: "bad content-range", method: "PATCH", path: loc, header: map[string]string{"Content-Range": "x-y"}, body: "zz", wantStatus: 400, wantCode: "BLOB_UPLOAD_INVALID"},
		{name: "length mismatch", method: "PATCH", path: loc, header: map[string]string{"Content-Range": "1024-1099"}, body: data[1024:1030], wantStatus: 400, wantCode: "SIZE_INVALID"},
		{name: "status", method: "GET", path: loc, wantStatus: 204, wantHeader: map[string]string{"Range": "0-1023"}},
		{name: "streamed chunk", method: "PATCH", path: loc, body: data[1024:3072], wantStatus: 202, wantHeader: map[string]string{"Range": "0-3071"}},
		{name: "put out of order", method: "PUT", path: loc + "?digest=" + string(d), header: map[string]string{"Content-Range": "0-1023"}, body: data[:1024], wantStatus: 416},
		{name: "put missing digest", method: "PUT", path: loc, wantStatus: 400, wantCode: "DIGEST_INVALID"},
		{name: "put last chunk", method: "PUT", path: loc + "?digest=" + string(d), header: map[string]string{"Content-Range": "3072-4095"}, body: data[3072:], wantStatus: 201,
			wantHeader: map[string]string{"Location": "/v2/up/chunked/blobs/" + string(d), "Docker-Content-Digest": string(d)}},
		{name: "session gone", method: "GET", path: loc, wantStatus: 404, wantCode: "BLOB_UPLOAD_UNKNOWN"},
		{name: "blob visible", method: "GET", path: "/v2/up/chunked/blobs/" + string(d), wantStatus: 200, wantBody: data},
	})

	// Monolithic POST with digest, sha256 and sha512.
	runCalls(t, base, []call{
		{name: "monolithic", method: "POST", path: "/v2/up/mono/blobs/uploads/?digest=" + string(d), body: data, wantStatus: 201, wantHeader: map[string]string{"Docker-Content-Digest": string(d)}},
		{name: "monolithic sha512", method: "POST", path: "/v2/up/mono/blobs/uploads/?digest=" + string(d512), body: data, wantStatus: 201, wantHeader: map[string]string{"Docker-Content-Digest": string(d512)}},
		{name: "get sha512", method: "GET", path: "/v2/up/mono/blobs/" + string(d512), wantStatus: 200, wantBody: data, wantHeader: map[string]string{"Docker-Content-Digest": string(d512)}},
		{name: "monolithic mismatch", method: "POST", path: "/v2/up/mono/blobs/uploads/?digest=" + string(digest.FromString("x")), body: data, wantStatus: 400, wantCode: "DIGEST_INVALID"},
		{name: "mismatch invisible", method: "HEAD", path: "/v2/up/mono/blobs/" + string(digest.FromString("x")), wantStatus: 404},
		{name: "monolithic bad digest", method: "POST", path: "/v2/up/mono/blobs/uploads/?digest=sha256:nope", body: data, wantStatus: 400, wantCode: "DIGEST_INVALID"},
		{name: "empty blob", method: "POST", path: "/v2/up/mono/blobs/uploads/?digest=" + string(digest.FromString("")), wantStatus: 201},
		{name: "empty blob head", method: "HEAD", path: "/v2/up/mono/blobs/" + string(digest.FromString("")), wantStatus: 200, wantHeader: map[string]string{"Content-Length": "0"}},
	})

	// Streamed session finished by PUT with the whole body, sha512, and a digest mismatch.
	for _, tc := range []struct {
		name   string
		digest digest.Digest
		status int
	}{{"put whole sha256", d, 201}, {"put whole sha512", d512, 201}, {"put mismatch", digest.FromString("other"), 400}} {
		t.Run(tc.name, func(t *testing.T) {
			loc := call{method: "POST", path: "/v2/up/put/blobs/uploads/", wantStatus: 202}.run(t, base).Header.Get("Location")
			call{method: "PUT", path: loc + "?digest=" + string(tc.digest), body: data, wantStatus: tc.status}.run(t, base)
			call{method: "GET", path: loc, wantStatus: 404}.run(t, base) // finished or discarded
		})
	}

	// Mounts: from a repository that has the blob, from one that doesn't, without from.
	other := pushBlob(t, base, "up/source", "mounted-content")
	runCalls(t, base, []call{
		{name: "mount", method: "POST", path: "/v2/up/target/blobs/uploads/?mount=" + string(other) + "&from=up/source", wantStatus: 201,
			wantHeader: map[string]string{"Location": "/v2/up/target/blobs/" + string(other), "Docker-Content-Digest": string(other)}},
		{name: "mounted readable", method: "GET", path: "/v2/up/target/blobs/" + string(other), wantStatus: 200, wantBody: "mounted-content"},
		{name: "mount missing falls back", method: "POST", path: "/v2/up/target2/blobs/uploads/?mount=" + string(digest.FromString("nobody")) + "&from=up/source", wantStatus: 202, wantHeader: map[string]string{"Location": "*"}},
		{name: "mount wrong source falls back", method: "POST", path: "/v2/up/target2/blobs/uploads/?mount=" + string(other) + "&from=up/mono", wantStatus: 202},
		{name: "mount bad source name", method: "POST", path: "/v2/up/target2/blobs/uploads/?mount=" + string(other) + "&from=UP", wantStatus: 400, wantCode: "NAME_INVALID"},
		{name: "mount without from", method: "POST", path: "/v2/up/target3/blobs/uploads/?mount=" + string(other), wantStatus: 201},
		{name: "mount bad digest", method: "POST", path: "/v2/up/target3/blobs/uploads/?mount=sha256:zz&from=up/source", wantStatus: 400, wantCode: "DIGEST_INVALID"},
	})

	// Cancel, unknown sessions, sessions of another repository.
	loc = call{method: "POST", path: "/v2/up/cancel/blobs/uploads/", wantStatus: 202}.run(t, base).Header.Get("Location")
	id := loc[strings.LastIndexByte(loc, '/')+1:]
	runCalls(t, base, []call{
		{name: "other repo's session", method: "GET", path: "/v2/up/elsewhere/blobs/uploads/" + id, wantStatus: 404, wantCode: "BLOB_UPLOAD_UNKNOWN"},
		{name: "cancel", method: "DELETE", path: loc, wantStatus: 204},
		{name: "cancelled", method: "PATCH", path: loc, body: "x", wantStatus: 404, wantCode: "BLOB_UPLOAD_UNKNOWN"},
		{name: "cancel again", method: "DELETE", path: loc, wantStatus: 404},
		{name: "bogus id", method: "GET", path: "/v2/up/cancel/blobs/uploads/not-an-id", wantStatus: 404, wantCode: "BLOB_UPLOAD_UNKNOWN"},
		{name: "traversal id", method: "GET", path: "/v2/up/cancel/blobs/uploads/..%2F..%2Fmeta.db", wantStatus: 404, wantCode: "BLOB_UPLOAD_UNKNOWN"},
	})
}

func TestAPIManifestWrites(t *testing.T) {
	srv, _ := newTestServer(t)
	base := srv.URL
	f := seed(t, base)
	missing := digest.FromString("missing")
	ct := map[string]string{"Content-Type": ociManifest}
	withMissingLayer := imageManifest(f.configD, missing, len(f.config), 7, "")
	foreign := strings.Replace(imageManifest(f.configD, missing, len(f.config), 7, ""), "application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", 1)
	childless := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":10}]}`, ociIndex, ociManifest, missing)
	danglingSubject := imageManifest(f.configD, f.layerD, len(f.config), len(f.layer), fmt.Sprintf(`,"subject":{"mediaType":%q,"digest":%q,"size":3}`, ociManifest, missing))
	d512 := digest.SHA512.FromString(f.image)
	runCalls(t, base, []call{
		{name: "missing layer", method: "PUT", path: "/v2/team/app/manifests/bad", header: ct, body: withMissingLayer, wantStatus: 404, wantCode: "MANIFEST_BLOB_UNKNOWN"},
		{name: "layer of another repo", method: "PUT", path: "/v2/other/repo/manifests/x", header: ct, body: f.image, wantStatus: 404, wantCode: "MANIFEST_BLOB_UNKNOWN"},
		{name: "missing child", method: "PUT", path: "/v2/team/app/manifests/bad", header: map[string]string{"Content-Type": ociIndex}, body: childless, wantStatus: 404, wantCode: "MANIFEST_BLOB_UNKNOWN"},
		{name: "foreign layer without blob", method: "PUT", path: "/v2/team/app/manifests/foreign", header: ct, body: foreign, wantStatus: 201},
		{name: "dangling subject", method: "PUT", path: "/v2/team/app/manifests/dangling", header: ct, body: danglingSubject, wantStatus: 201, wantHeader: map[string]string{"OCI-Subject": string(missing)}},
		// The same bytes again, as a client pushes a further tag: answered
		// from what the store holds (the subject too), not parsed again.
		{name: "dangling subject pushed again", method: "PUT", path: "/v2/team/app/manifests/dangling2?tag=dangling3", header: ct, body: danglingSubject, wantStatus: 201,
			wantHeader: map[string]string{"OCI-Subject": string(missing), "OCI-Tag": "dangling3", "Docker-Content-Digest": string(digest.FromString(danglingSubject))}},
		{name: "pushed again, tagged", method: "HEAD", path: "/v2/team/app/manifests/dangling3", wantStatus: 200, wantHeader: map[string]string{"Docker-Content-Digest": string(digest.FromString(danglingSubject))}},
		{name: "referrers of missing subject", method: "GET", path: "/v2/team/app/referrers/" + string(missing), wantStatus: 200},
		{name: "malformed json", method: "PUT", path: "/v2/team/app/manifests/bad", header: ct, body: `{"schemaVersion":2,`, wantStatus: 400, wantCode: "MANIFEST_INVALID"},
		{name: "not an object", method: "PUT", path: "/v2/team/app/manifests/bad", header: ct, body: `[]`, wantStatus: 400, wantCode: "MANIFEST_INVALID"},
		{name: "schema 1", method: "PUT", path: "/v2/team/app/manifests/bad", header: map[string]string{"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"}, body: `{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}`, wantStatus: 400, wantCode: "MANIFEST_INVALID"},
		{name: "media type mismatch", method: "PUT", path: "/v2/team/app/manifests/bad", header: map[string]string{"Content-Type": ociIndex}, body: f.image, wantStatus: 400, wantCode: "MANIFEST_INVALID"},
		{name: "no config", method: "PUT", path: "/v2/team/app/manifests/bad", header: ct, body: `{"schemaVersion":2,"layers":[]}`, wantStatus: 400, wantCode: "MANIFEST_INVALID"},
		{name: "bad descriptor digest", method: "PUT", path: "/v2/team/app/manifests/bad", header: ct, body: imageManifest("sha256:short", f.layerD, 1, 1, ""), wantStatus: 400, wantCode: "MANIFEST_INVALID"},
		{name: "negative size", method: "PUT", path: "/v2/team/app/manifests/bad", header: ct, body: imageManifest(f.configD, f.layerD, -1, 1, ""), wantStatus: 400, wantCode: "MANIFEST_INVALID"},
		{name: "digest mismatch", method: "PUT", path: "/v2/team/app/manifests/" + string(f.imageD), header: ct, body: f.image + "  ", wantStatus: 400, wantCode: "DIGEST_INVALID"},
		{name: "bad digest reference", method: "PUT", path: "/v2/team/app/manifests/sha256:baddigeststring", header: ct, body: f.image, wantStatus: 400, wantCode: "DIGEST_INVALID"},
		{name: "bad tag", method: "PUT", path: "/v2/team/app/manifests/-tag", header: ct, body: f.image, wantStatus: 400, wantCode: "TAG_INVALID"},
		{name: "bad tag param", method: "PUT", path: "/v2/team/app/manifests/" + string(f.imageD) + "?tag=ok&tag=no!", header: ct, body: f.image, wantStatus: 400, wantCode: "TAG_INVALID"},
		{name: "too large", method: "PUT", path: "/v2/team/app/manifests/big", header: ct, body: strings.Repeat(" ", maxManifestSize+1), wantStatus: 413, wantCode: "SIZE_INVALID"},
		{name: "nothing half-written", method: "GET", path: "/v2/team/app/manifests/bad", wantStatus: 404},
		{name: "sha512 with tag params", method: "PUT", path: "/v2/team/app/manifests/" + string(d512) + "?tag=s1&tag=s2", header: ct, body: f.image, wantStatus: 201,
			wantHeader: map[string]string{"Docker-Content-Digest": string(d512), "Location": "/v2/team/app/manifests/" + string(d512)}},
		{name: "tag of sha512", method: "HEAD", path: "/v2/team/app/manifests/s2", wantStatus: 200, wantHeader: map[string]string{"Docker-Content-Digest": string(d512)}},
		{name: "docker media type", method: "PUT", path: "/v2/team/app/manifests/docker", header: map[string]string{"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"},
			body: strings.Replace(f.image, `"mediaType":"`+ociManifest+`",`, `"mediaType":"application/vnd.docker.distribution.manifest.v2+json",`, 1), wantStatus: 201},
		{name: "no media type anywhere", method: "PUT", path: "/v2/team/app/manifests/plain", body: strings.Replace(f.image, `"mediaType":"`+ociManifest+`",`, "", 1), wantStatus: 201},
		{name: "plain is oci", method: "HEAD", path: "/v2/team/app/manifests/plain", wantStatus: 200, wantHeader: map[string]string{"Content-Type": ociManifest}},
	})
	// The tag-param response names the tags applied.
	resp := call{method: "PUT", path: "/v2/team/app/manifests/" + string(f.imageD) + "?tag=a1&tag=a2", header: ct, body: f.image, wantStatus: 201}.run(t, base)
	if got := resp.Header.Values("OCI-Tag"); strings.Join(got, ",") != "a1,a2" {
		t.Errorf("OCI-Tag = %v, want [a1 a2]", got)
	}

	// Deletes: a tag only, then the manifest with its tags and referrer entry, then blobs.
	runCalls(t, base, []call{
		{name: "delete tag", method: "DELETE", path: "/v2/team/app/manifests/a1", wantStatus: 202},
		{name: "tag gone", method: "HEAD", path: "/v2/team/app/manifests/a1", wantStatus: 404},
		{name: "manifest stays", method: "HEAD", path: "/v2/team/app/manifests/" + string(f.imageD), wantStatus: 200},
		{name: "delete unknown tag", method: "DELETE", path: "/v2/team/app/manifests/a1", wantStatus: 404, wantCode: "MANIFEST_UNKNOWN"},
		{name: "delete artifact", method: "DELETE", path: "/v2/team/app/manifests/" + string(f.artD), wantStatus: 202},
		{name: "referrer gone", method: "GET", path: "/v2/team/app/referrers/" + string(f.imageD), wantStatus: 200,
			wantBody: fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[]}`, ociIndex)},
		{name: "delete image", method: "DELETE", path: "/v2/team/app/manifests/" + string(f.imageD), wantStatus: 202},
		{name: "its tags gone", method: "GET", path: "/v2/team/app/manifests/v1", wantStatus: 404},
		{name: "other tag gone", method: "GET", path: "/v2/team/app/manifests/a2", wantStatus: 404},
		{name: "delete again", method: "DELETE", path: "/v2/team/app/manifests/" + string(f.imageD), wantStatus: 404, wantCode: "MANIFEST_UNKNOWN"},
		{name: "delete in unknown repo", method: "DELETE", path: "/v2/no/repo/manifests/v1", wantStatus: 404, wantCode: "MANIFEST_UNKNOWN"},
		{name: "delete blob", method: "DELETE", path: "/v2/team/app/blobs/" + string(f.layerD), wantStatus: 202},
		{name: "blob gone", method: "HEAD", path: "/v2/team/app/blobs/" + string(f.layerD), wantStatus: 404},
		{name: "delete blob again", method: "DELETE", path: "/v2/team/app/blobs/" + string(f.layerD), wantStatus: 404, wantCode: "BLOB_UNKNOWN"},
	})
}

func TestAPIEmptyRepositoryLeavesCatalog(t *testing.T) {
	srv, _ := newTestServer(t)
	base := srv.URL
	d := pushBlob(t, base, "gone/soon", "content")
	call{method: "DELETE", path: "/v2/gone/soon/blobs/" + string(d), wantStatus: 202}.run(t, base)
	call{method: "GET", path: "/v2/_catalog", wantStatus: 200, wantBody: `{"repositories":[]}`}.run(t, base)
	call{method: "GET", path: "/v2/gone/soon/tags/list", wantStatus: 404, wantCode: "NAME_UNKNOWN"}.run(t, base)
}
