package registry

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// The tests in this file follow the OCI distribution-spec conformance
// suite's workflows, once per digest algorithm, so a regression shows here
// before the official suite runs.

// TestConformanceBlobFlows pushes a blob in every way the suite does, per
// algorithm, and checks it reads back and deletes per repository.
func TestConformanceBlobFlows(t *testing.T) {
	srv, _ := newTestServer(t)
	base := srv.URL
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		t.Run(string(alg), func(t *testing.T) {
			repo := "conformance/" + string(alg)
			data := strings.Repeat(string(alg), 3067/len(alg)+1)[:3067]
			d := alg.FromString(data)
			flows := map[string]func(){
				"post only": func() {
					call{method: "POST", path: "/v2/" + repo + "/blobs/uploads/?digest=" + string(d), body: data, wantStatus: 201,
						wantHeader: map[string]string{"Location": "/v2/" + repo + "/blobs/" + string(d), "Docker-Content-Digest": string(d)}}.run(t, base)
				},
				"post put": func() {
					loc := call{method: "POST", path: "/v2/" + repo + "/blobs/uploads/", wantStatus: 202}.run(t, base).Header.Get("Location")
					call{method: "PUT", path: loc + "?digest=" + string(d), body: data, wantStatus: 201, wantHeader: map[string]string{"Docker-Content-Digest": string(d)}}.run(t, base)
				},
				"chunked out of order": func() {
					loc := call{method: "POST", path: "/v2/" + repo + "/blobs/uploads/", header: map[string]string{"Content-Length": "0"}, wantStatus: 202}.run(t, base).Header.Get("Location")
					call{method: "GET", path: loc, wantStatus: 204, wantHeader: map[string]string{"Range": "0-0"}}.run(t, base)
					for start := 0; start < len(data); start += 1024 {
						end := min(start+1024, len(data))
						bad := start + 1024
						if bad >= len(data) {
							bad = 0
						}
						call{method: "PATCH", path: loc, header: map[string]string{"Content-Range": fmt.Sprintf("%d-%d", bad, bad+9)}, body: data[:10], wantStatus: 416}.run(t, base)
						call{method: "GET", path: loc, wantStatus: 204, wantHeader: map[string]string{"Range": uploadRange(int64(start))}}.run(t, base)
						resp := call{method: "PATCH", path: loc, header: map[string]string{"Content-Range": fmt.Sprintf("%d-%d", start, end-1)}, body: data[start:end], wantStatus: 202,
							wantHeader: map[string]string{"Range": fmt.Sprintf("0-%d", end-1)}}.run(t, base)
						loc = resp.Header.Get("Location")
					}
					call{method: "PUT", path: loc + "?digest=" + string(d), header: map[string]string{"Content-Length": "0"}, wantStatus: 201}.run(t, base)
				},
				"chunk in put": func() {
					loc := call{method: "POST", path: "/v2/" + repo + "/blobs/uploads/", wantStatus: 202}.run(t, base).Header.Get("Location")
					call{method: "PATCH", path: loc, header: map[string]string{"Content-Range": "0-2047"}, body: data[:2048], wantStatus: 202}.run(t, base)
					call{method: "PUT", path: loc + "?digest=" + string(d), header: map[string]string{"Content-Range": "0-1018"}, body: data[2048:], wantStatus: 416}.run(t, base)
					call{method: "PUT", path: loc + "?digest=" + string(d), header: map[string]string{"Content-Range": fmt.Sprintf("2048-%d", len(data)-1)}, body: data[2048:], wantStatus: 201}.run(t, base)
				},
				"stream": func() {
					loc := call{method: "POST", path: "/v2/" + repo + "/blobs/uploads/", wantStatus: 202}.run(t, base).Header.Get("Location")
					call{method: "PATCH", path: loc, body: data, wantStatus: 202}.run(t, base)
					call{method: "PUT", path: loc + "?digest=" + string(d), wantStatus: 201}.run(t, base)
				},
			}
			for name, push := range flows {
				t.Run(name, func(t *testing.T) {
					push()
					call{method: "HEAD", path: "/v2/" + repo + "/blobs/" + string(d), wantStatus: 200,
						wantHeader: map[string]string{"Content-Length": fmt.Sprint(len(data)), "Docker-Content-Digest": string(d)}}.run(t, base)
					call{method: "GET", path: "/v2/" + repo + "/blobs/" + string(d), wantStatus: 200, wantBody: data}.run(t, base)
					call{method: "DELETE", path: "/v2/" + repo + "/blobs/" + string(d), wantStatus: 202}.run(t, base)
					call{method: "HEAD", path: "/v2/" + repo + "/blobs/" + string(d), wantStatus: 404}.run(t, base)
				})
			}
			t.Run("bad digest", func(t *testing.T) {
				call{method: "POST", path: "/v2/" + repo + "/blobs/uploads/?digest=" + string(d), body: data + "oh no", wantStatus: 400, wantCode: "DIGEST_INVALID"}.run(t, base)
				loc := call{method: "POST", path: "/v2/" + repo + "/blobs/uploads/", wantStatus: 202}.run(t, base).Header.Get("Location")
				call{method: "PATCH", path: loc, body: data + "oh no", wantStatus: 202}.run(t, base)
				call{method: "PUT", path: loc + "?digest=" + string(d), wantStatus: 400, wantCode: "DIGEST_INVALID"}.run(t, base)
				call{method: "HEAD", path: "/v2/" + repo + "/blobs/" + string(d), wantStatus: 404}.run(t, base)
			})
			t.Run("mounts", func(t *testing.T) {
				src := repo + "/source"
				call{method: "POST", path: "/v2/" + src + "/blobs/uploads/?digest=" + string(d), body: data, wantStatus: 201}.run(t, base)
				call{method: "POST", path: "/v2/" + repo + "/blobs/uploads/?mount=" + string(d) + "&from=" + src, wantStatus: 201,
					wantHeader: map[string]string{"Location": "/v2/" + repo + "/blobs/" + string(d)}}.run(t, base)
				call{method: "DELETE", path: "/v2/" + repo + "/blobs/" + string(d), wantStatus: 202}.run(t, base)
				call{method: "POST", path: "/v2/" + repo + "/blobs/uploads/?mount=" + string(d), wantStatus: 201}.run(t, base)
				call{method: "DELETE", path: "/v2/" + repo + "/blobs/" + string(d), wantStatus: 202}.run(t, base)
				call{method: "HEAD", path: "/v2/" + repo + "/blobs/" + string(d), wantStatus: 404}.run(t, base)
				call{method: "HEAD", path: "/v2/" + src + "/blobs/" + string(d), wantStatus: 200}.run(t, base)
				missing := alg.FromString("never pushed")
				call{method: "POST", path: "/v2/" + repo + "/blobs/uploads/?mount=" + string(missing) + "&from=" + src, wantStatus: 202}.run(t, base)
			})
		})
	}
}

// TestConformanceDataSets pushes the suite's manifest data sets by digest,
// children first, and reads them back byte for byte.
func TestConformanceDataSets(t *testing.T) {
	srv, _ := newTestServer(t)
	base := srv.URL
	repo := "conformance/data"
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		t.Run(string(alg), func(t *testing.T) {
			blob := func(s string) digest.Digest {
				d := alg.FromString(s)
				call{method: "POST", path: "/v2/" + repo + "/blobs/uploads/?digest=" + string(d), body: s, wantStatus: 201}.run(t, base)
				return d
			}
			put := func(mediaType string, v any, tags ...string) (digest.Digest, string) {
				body, _ := json.Marshal(v)
				d := alg.FromBytes(body)
				q := ""
				if len(tags) > 0 {
					q = "?tag=" + strings.Join(tags, "&tag=")
				}
				resp := call{method: "PUT", path: "/v2/" + repo + "/manifests/" + string(d) + q, header: map[string]string{"Content-Type": mediaType}, body: string(body), wantStatus: 201,
					wantHeader: map[string]string{"Docker-Content-Digest": string(d), "Location": "/v2/" + repo + "/manifests/" + string(d)}}.run(t, base)
				if got := strings.Join(resp.Header.Values("OCI-Tag"), ","); got != strings.Join(tags, ",") {
					t.Errorf("OCI-Tag = %q, want %q", got, strings.Join(tags, ","))
				}
				call{method: "GET", path: "/v2/" + repo + "/manifests/" + string(d), header: map[string]string{"Accept": ociManifest + ", " + ociIndex}, wantStatus: 200, wantBody: string(body),
					wantHeader: map[string]string{"Content-Type": mediaType, "Docker-Content-Digest": string(d)}}.run(t, base)
				return d, string(body)
			}
			desc := func(mt string, d digest.Digest, size int) map[string]any {
				return map[string]any{"mediaType": mt, "digest": d, "size": size}
			}
			cfg := `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`
			cfgD, layerD, emptyD := blob(cfg), blob("layer"), blob("{}")
			image := map[string]any{"schemaVersion": 2, "mediaType": ociManifest, "config": desc("application/vnd.oci.image.config.v1+json", cfgD, len(cfg)),
				"layers": []any{desc("application/vnd.oci.image.layer.v1.tar+gzip", layerD, 5)}, "custom": map[string]any{"field": true}}
			imgD, imgBody := put(ociManifest, image, "img-"+alg.String())
			big := map[string]any{"schemaVersion": 2, "mediaType": ociManifest, "config": image["config"], "layers": image["layers"], "annotations": map[string]string{}}
			for i := range 390 {
				big["annotations"].(map[string]string)[fmt.Sprintf("a%d", i)] = strings.Repeat("A", 10000)
			}
			put(ociManifest, big)
			index := map[string]any{"schemaVersion": 2, "mediaType": ociIndex, "manifests": []any{desc(ociManifest, imgD, len(imgBody))}}
			idxD, idxBody := put(ociIndex, index, "i1", "i2")
			put(ociIndex, map[string]any{"schemaVersion": 2, "mediaType": ociIndex, "manifests": []any{desc(ociIndex, idxD, len(idxBody))}})
			put(ociIndex, map[string]any{"schemaVersion": 2, "mediaType": ociIndex, "manifests": []any{}})
			put(ociManifest, map[string]any{"schemaVersion": 2, "mediaType": ociManifest, "config": image["config"], "layers": []any{}})
			nondist := desc("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", alg.FromString("foreign"), 7)
			nondist["urls"] = []string{"https://example.com/layer"}
			put(ociManifest, map[string]any{"schemaVersion": 2, "mediaType": ociManifest, "config": image["config"], "layers": []any{nondist}})
			withData := desc("application/vnd.oci.empty.v1+json", emptyD, 2)
			withData["data"] = "e30="
			subject := desc(ociManifest, imgD, len(imgBody))
			artD, artBody := put(ociManifest, map[string]any{"schemaVersion": 2, "mediaType": ociManifest, "artifactType": "application/vnd.example.sig",
				"config": withData, "layers": []any{withData}, "subject": subject, "annotations": map[string]string{"k": "v"}})
			idxArtD, idxArtBody := put(ociIndex, map[string]any{"schemaVersion": 2, "mediaType": ociIndex, "artifactType": "application/vnd.example.list",
				"manifests": []any{desc(ociManifest, imgD, len(imgBody))}, "subject": subject})
			missingSubject := desc(ociManifest, alg.FromString("nothing"), 10)
			put(ociManifest, map[string]any{"schemaVersion": 2, "mediaType": ociManifest, "config": withData, "layers": []any{}, "subject": missingSubject})

			want := map[digest.Digest]string{artD: "application/vnd.example.sig", idxArtD: "application/vnd.example.list"}
			resp := call{method: "GET", path: "/v2/" + repo + "/referrers/" + string(imgD), wantStatus: 200, wantHeader: map[string]string{"Content-Type": ociIndex}}.run(t, base)
			var idx struct {
				Manifests []struct {
					Digest       digest.Digest
					Size         int
					ArtifactType string
				}
			}
			json.NewDecoder(resp.Body).Decode(&idx)
			if len(idx.Manifests) != 2 {
				t.Fatalf("referrers = %+v, want 2", idx.Manifests)
			}
			sizes := map[digest.Digest]int{artD: len(artBody), idxArtD: len(idxArtBody)}
			for _, m := range idx.Manifests {
				if want[m.Digest] != m.ArtifactType || sizes[m.Digest] != m.Size {
					t.Errorf("referrer %+v, want artifactType %q size %d", m, want[m.Digest], sizes[m.Digest])
				}
			}
			call{method: "GET", path: "/v2/" + repo + "/manifests/i2", wantStatus: 200, wantBody: idxBody, wantHeader: map[string]string{"Docker-Content-Digest": string(idxD)}}.run(t, base)
			call{method: "DELETE", path: "/v2/" + repo + "/manifests/i2", wantStatus: 202}.run(t, base)
			call{method: "HEAD", path: "/v2/" + repo + "/manifests/i2", wantStatus: 404}.run(t, base)
			call{method: "HEAD", path: "/v2/" + repo + "/manifests/i1", wantStatus: 200}.run(t, base)
		})
	}
}
