package main

// End-to-end tests driven by go-containerregistry's remote package and by
// plain net/http where a test needs to see the wire (status codes,
// headers, chunk offsets).

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ref parses "repo:tag" or "repo@digest" on the test's registry.
func (s *e2eServer) ref(t *testing.T, r string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s.host()+"/"+r, name.Insecure)
	if err != nil {
		t.Fatalf("name.ParseReference(%q) = %v", r, err)
	}
	return ref
}

// pullWhole pulls ref and checks every layer with checkLayers and, when
// want is not nil, that the image is want.
func pullWhole(t *testing.T, ref name.Reference, want v1.Image, opts ...remote.Option) v1.Image {
	t.Helper()
	got, err := remote.Image(ref, opts...)
	if err != nil {
		t.Fatalf("remote.Image(%s) = %v", ref, err)
	}
	if want != nil {
		if g, w := digestOf(t, got), digestOf(t, want); g != w {
			t.Errorf("remote.Image(%s).Digest() = %v, want %v", ref, g, w)
		}
	}
	checkLayers(t, got)
	return got
}

// checkLayers reads every layer of img and checks its bytes against its
// digest and, uncompressed, against its diff id.
func checkLayers(t *testing.T, img v1.Image) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatalf("Layers() = %v", err)
	}
	for i, l := range layers {
		want, _ := l.Digest()
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("layer %d Compressed() = %v", i, err)
		}
		got, _, err := v1.SHA256(rc)
		rc.Close()
		if err != nil || got != want {
			t.Errorf("sha256(layer %d bytes) = %v (err %v), want %v", i, got, err, want)
		}
		wantDiff, _ := l.DiffID()
		rc, err = l.Uncompressed()
		if err != nil {
			t.Fatalf("layer %d Uncompressed() = %v", i, err)
		}
		gotDiff, _, err := v1.SHA256(rc)
		rc.Close()
		if err != nil || gotDiff != wantDiff {
			t.Errorf("sha256(layer %d uncompressed) = %v (err %v), want diff id %v", i, gotDiff, err, wantDiff)
		}
	}
}

func digestOf(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestE2EImagePushPull(t *testing.T) {
	s := startServer(t)
	img, err := random.Image(3<<20, 4)
	if err != nil {
		t.Fatal(err)
	}
	ref := s.ref(t, "team/app:v1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("remote.Write(%s) = %v", ref, err)
	}
	pullWhole(t, ref, img)

	tags, err := remote.List(ref.Context())
	if err != nil || len(tags) != 1 || tags[0] != "v1" {
		t.Errorf("remote.List(%s) = %v, %v, want [v1]", ref.Context(), tags, err)
	}
	// Pulling by digest must serve the same bytes as by tag.
	byDigest := s.ref(t, "team/app@"+digestOf(t, img).String())
	if d, err := remote.Head(byDigest); err != nil || d.Digest != digestOf(t, img) {
		t.Errorf("remote.Head(%s) = %v, %v, want digest %v", byDigest, d, err, digestOf(t, img))
	}
}

func TestE2EMultiArchIndex(t *testing.T) {
	s := startServer(t)
	children, err := random.Index(1<<10, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := children.IndexManifest()
	platforms := []v1.Platform{
		{OS: "linux", Architecture: "amd64"},
		{OS: "linux", Architecture: "arm64", Variant: "v8"},
		{OS: "linux", Architecture: "arm", Variant: "v7"},
	}
	var idx v1.ImageIndex = empty.Index
	for i, desc := range im.Manifests {
		img, err := children.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &platforms[i]},
		})
	}
	ref := s.ref(t, "multi/arch:latest")
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatalf("remote.WriteIndex(%s) = %v", ref, err)
	}
	gotIdx, err := remote.Index(ref)
	if err != nil {
		t.Fatalf("remote.Index(%s) = %v", ref, err)
	}
	if g, w := digestOf(t, gotIdx), digestOf(t, idx); g != w {
		t.Errorf("remote.Index(%s).Digest() = %v, want %v", ref, g, w)
	}
	for i, p := range platforms {
		t.Run(p.String(), func(t *testing.T) {
			img, err := remote.Image(ref, remote.WithPlatform(p))
			if err != nil {
				t.Fatalf("remote.Image(%s, %s) = %v", ref, p, err)
			}
			if g, w := digestOf(t, img), im.Manifests[i].Digest; g != w {
				t.Errorf("remote.Image(%s, %s).Digest() = %v, want %v", ref, p, g, w)
			}
			checkLayers(t, img)
		})
	}
}

// emptyJSON is the OCI empty descriptor's content, used as an artifact's
// config.
const emptyJSON = "{}"

// pushBlob uploads b monolithically (POST then PUT ?digest=) and returns
// its sha256 digest.
func (s *e2eServer) pushBlob(t *testing.T, repo string, b []byte) v1.Hash {
	t.Helper()
	sum := sha256.Sum256(b)
	d := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	loc := s.startUpload(t, repo)
	resp, _ := s.do(t, http.MethodPut, withQuery(loc, "digest", d.String()), octet(len(b)), b)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %s?digest=%s = %s, want 201", loc, d, resp.Status)
	}
	return d
}

// pushArtifact pushes an OCI image manifest that carries one small blob and
// refers to subject, and returns its digest.
func (s *e2eServer) pushArtifact(t *testing.T, repo, artifactType, configType string, subject v1.Descriptor, annotations map[string]string) v1.Hash {
	t.Helper()
	cfg := s.pushBlob(t, repo, []byte(emptyJSON))
	payload := []byte(fmt.Sprintf(`{"artifact":%q}`, artifactType+configType))
	layer := s.pushBlob(t, repo, payload)
	m := &v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        v1.Descriptor{MediaType: types.MediaType(configType), Digest: cfg, Size: int64(len(emptyJSON))},
		Layers:        []v1.Descriptor{{MediaType: "application/json", Digest: layer, Size: int64(len(payload))}},
		Subject:       &subject,
		Annotations:   annotations,
	}
	body, _ := json.Marshal(m)
	sum := sha256.Sum256(body)
	d := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	resp, _ := s.do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+d.String(),
		http.Header{"Content-Type": {string(types.OCIManifestSchema1)}}, body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT artifact manifest %s = %s, want 201", d, resp.Status)
	}
	if got := resp.Header.Get("OCI-Subject"); got != subject.Digest.String() {
		t.Errorf("PUT artifact manifest: OCI-Subject = %q, want %q", got, subject.Digest)
	}
	return d
}

func TestE2EReferrers(t *testing.T) {
	s := startServer(t)
	img, err := random.Image(1<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := s.ref(t, "sign/app:v1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("remote.Write(%s) = %v", ref, err)
	}
	desc, err := remote.Head(ref)
	if err != nil {
		t.Fatal(err)
	}
	subject := v1.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
	const sbom, sig = "application/vnd.example.sbom", "application/vnd.example.sig.config"
	sbomDigest := s.pushArtifact(t, "sign/app", sbom, "application/vnd.oci.empty.v1+json", subject,
		map[string]string{"org.opencontainers.image.created": "2024-01-02T03:04:05Z"})
	// No artifactType: the config's media type stands in for it.
	sigDigest := s.pushArtifact(t, "sign/app", "", sig, subject, nil)

	subj := ref.Context().Digest(desc.Digest.String())
	tests := []struct {
		filter string
		want   map[v1.Hash]string // digest → artifactType
	}{
		{"", map[v1.Hash]string{sbomDigest: sbom, sigDigest: sig}},
		{sbom, map[v1.Hash]string{sbomDigest: sbom}},
		{sig, map[v1.Hash]string{sigDigest: sig}},
		{"application/vnd.example.none", map[v1.Hash]string{}},
	}
	for _, tt := range tests {
		t.Run("filter="+tt.filter, func(t *testing.T) {
			var opts []remote.Option
			if tt.filter != "" {
				opts = append(opts, remote.WithFilter("artifactType", tt.filter))
			}
			idx, err := remote.Referrers(subj, opts...)
			if err != nil {
				t.Fatalf("remote.Referrers(%s, %q) = %v", subj, tt.filter, err)
			}
			im, _ := idx.IndexManifest()
			got := map[v1.Hash]string{}
			for _, d := range im.Manifests {
				got[d.Digest] = d.ArtifactType
				if d.Digest == sbomDigest && d.Annotations["org.opencontainers.image.created"] == "" {
					t.Errorf("referrer %s annotations = %v, want the manifest's", d.Digest, d.Annotations)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("remote.Referrers(%s, %q) = %v, want %v", subj, tt.filter, got, tt.want)
			}
			if tt.filter == "" {
				return
			}
			resp, _ := s.do(t, http.MethodGet, "/v2/sign/app/referrers/"+desc.Digest.String()+"?artifactType="+url.QueryEscape(tt.filter), nil, nil)
			if h := resp.Header.Get("OCI-Filters-Applied"); h != "artifactType" {
				t.Errorf("GET referrers?artifactType: OCI-Filters-Applied = %q, want artifactType", h)
			}
		})
	}
}

func TestE2ECrossRepoMount(t *testing.T) {
	s := startServer(t)
	img, err := random.Image(1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	src := s.ref(t, "mount/src:v1")
	if err := remote.Write(src, img); err != nil {
		t.Fatalf("remote.Write(%s) = %v", src, err)
	}
	// An image pulled from this registry knows where its layers live, so
	// ggcr pushes it elsewhere by mounting rather than uploading.
	pulled, err := remote.Image(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := s.ref(t, "mount/dst:v1")
	if err := remote.Write(dst, pulled); err != nil {
		t.Fatalf("remote.Write(%s) = %v", dst, err)
	}
	mounted := 0
	for _, l := range s.logLines() {
		if l["method"] == "POST" && l["path"] == "/v2/mount/dst/blobs/uploads/" && l["status"] == float64(201) {
			mounted++
		}
	}
	if mounted != 4 {
		t.Errorf("POST /v2/mount/dst/blobs/uploads/ answered 201 %d times in the log, want 4 (one mount per layer and config)", mounted)
	}
	pullWhole(t, dst, nil)

	layers, _ := img.Layers()
	d := digestOf(t, layers[0]).String()
	tests := []struct {
		repo, from string
		want       int
	}{
		{"mount/third", "mount/src", http.StatusCreated},
		{"mount/fourth", "mount/empty", http.StatusAccepted}, // not there: start an upload instead
	}
	for _, tt := range tests {
		path := "/v2/" + tt.repo + "/blobs/uploads/?mount=" + d + "&from=" + tt.from
		resp, _ := s.do(t, http.MethodPost, path, nil, nil)
		if resp.StatusCode != tt.want {
			t.Errorf("POST %s = %s, want %d", path, resp.Status, tt.want)
		}
		if tt.want == http.StatusCreated && resp.Header.Get("Docker-Content-Digest") != d {
			t.Errorf("POST %s: Docker-Content-Digest = %q, want %q", path, resp.Header.Get("Docker-Content-Digest"), d)
		}
	}
	// A digest alone never grants access to another repository's blob.
	if resp, _ := s.do(t, http.MethodGet, "/v2/mount/fourth/blobs/"+d, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v2/mount/fourth/blobs/%s = %s, want 404", d, resp.Status)
	}
	if resp, b := s.do(t, http.MethodGet, "/v2/mount/third/blobs/"+d, nil, nil); resp.StatusCode != http.StatusOK || sha256of(b) != d {
		t.Errorf("GET /v2/mount/third/blobs/%s = %s with digest %s, want 200 with the blob", d, resp.Status, sha256of(b))
	}
}

// startUpload opens an upload session and returns its Location, resolved
// against the registry's URL.
func (s *e2eServer) startUpload(t *testing.T, repo string) string {
	t.Helper()
	resp, _ := s.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v2/%s/blobs/uploads/ = %s, want 202", repo, resp.Status)
	}
	return s.location(t, resp)
}

func (s *e2eServer) location(t *testing.T, resp *http.Response) string {
	t.Helper()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("%s %s: Location = %v", resp.Request.Method, resp.Request.URL, err)
	}
	return loc.String()
}

// patchChunk sends b as the chunk at offset and returns the next Location.
func (s *e2eServer) patchChunk(t *testing.T, loc string, offset int, b []byte) string {
	t.Helper()
	h := octet(len(b))
	h.Set("Content-Range", fmt.Sprintf("%d-%d", offset, offset+len(b)-1))
	resp, _ := s.do(t, http.MethodPatch, loc, h, b)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH %s (bytes %d-%d) = %s, want 202", loc, offset, offset+len(b)-1, resp.Status)
	}
	if got, want := resp.Header.Get("Range"), fmt.Sprintf("0-%d", offset+len(b)-1); got != want {
		t.Errorf("PATCH %s: Range = %q, want %q", loc, got, want)
	}
	return s.location(t, resp)
}

// checkBlob GETs a blob and compares its bytes.
func (s *e2eServer) checkBlob(t *testing.T, repo, d string, want []byte) {
	t.Helper()
	resp, got := s.do(t, http.MethodGet, "/v2/"+repo+"/blobs/"+d, nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
		t.Errorf("GET /v2/%s/blobs/%s = %s with %d bytes (equal %v), want 200 with the %d pushed bytes",
			repo, d, resp.Status, len(got), bytes.Equal(got, want), len(want))
	}
	if h := resp.Header.Get("Docker-Content-Digest"); h != d {
		t.Errorf("GET /v2/%s/blobs/%s: Docker-Content-Digest = %q, want %q", repo, d, h, d)
	}
}

func TestE2EChunkedUpload(t *testing.T) {
	s := startServer(t)
	blob := randomBytes(t, 5<<20+123)
	d := sha256of(blob)
	loc := s.startUpload(t, "chunks/app")
	const chunk = 1 << 20
	for off := 0; off < len(blob); off += chunk {
		loc = s.patchChunk(t, loc, off, blob[off:min(off+chunk, len(blob))])
	}
	// A chunk that does not start where the upload ends is refused.
	h := octet(3)
	h.Set("Content-Range", "7-9")
	if resp, _ := s.do(t, http.MethodPatch, loc, h, []byte("abc")); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("PATCH %s with Content-Range 7-9 = %s, want 416", loc, resp.Status)
	}
	resp, _ := s.do(t, http.MethodPut, withQuery(loc, "digest", d), nil, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %s?digest=%s = %s, want 201", loc, d, resp.Status)
	}
	s.checkBlob(t, "chunks/app", d, blob)
}

func TestE2EUploadResumesAfterRestart(t *testing.T) {
	s := startServer(t)
	blob := randomBytes(t, 2<<20+7)
	d, half := sha256of(blob), len(blob)/2
	loc := s.startUpload(t, "resume/app")
	loc = s.patchChunk(t, loc, 0, blob[:half])

	s.restart()
	// The Location names a path on the old port: keep the path only.
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	path := u.RequestURI()
	resp, _ := s.do(t, http.MethodGet, path, nil, nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("GET %s after restart = %s, want 204", path, resp.Status)
	}
	if got, want := resp.Header.Get("Range"), fmt.Sprintf("0-%d", half-1); got != want {
		t.Fatalf("GET %s after restart: Range = %q, want %q", path, got, want)
	}
	loc = s.patchChunk(t, s.location(t, resp), half, blob[half:])
	resp, _ = s.do(t, http.MethodPut, withQuery(loc, "digest", d), nil, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %s?digest=%s = %s, want 201", loc, d, resp.Status)
	}
	s.checkBlob(t, "resume/app", d, blob)
	s.restart()
	s.checkBlob(t, "resume/app", d, blob)
}

func TestE2ESHA512Blob(t *testing.T) {
	s := startServer(t)
	tests := []struct {
		name string
		push func(t *testing.T, repo, d string, b []byte)
	}{
		{"monolithic POST", func(t *testing.T, repo, d string, b []byte) {
			path := "/v2/" + repo + "/blobs/uploads/?digest=" + url.QueryEscape(d)
			if resp, _ := s.do(t, http.MethodPost, path, octet(len(b)), b); resp.StatusCode != http.StatusCreated {
				t.Fatalf("POST %s = %s, want 201", path, resp.Status)
			}
		}},
		{"POST then PUT", func(t *testing.T, repo, d string, b []byte) {
			loc := withQuery(s.startUpload(t, repo), "digest", d)
			if resp, _ := s.do(t, http.MethodPut, loc, octet(len(b)), b); resp.StatusCode != http.StatusCreated {
				t.Fatalf("PUT %s = %s, want 201", loc, resp.Status)
			}
		}},
		{"chunked", func(t *testing.T, repo, d string, b []byte) {
			loc := s.startUpload(t, repo)
			loc = s.patchChunk(t, loc, 0, b[:len(b)/2])
			loc = s.patchChunk(t, loc, len(b)/2, b[len(b)/2:])
			if resp, _ := s.do(t, http.MethodPut, withQuery(loc, "digest", d), nil, nil); resp.StatusCode != http.StatusCreated {
				t.Fatalf("PUT %s?digest=%s = %s, want 201", loc, d, resp.Status)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := randomBytes(t, 300<<10)
			d := sha512of(b)
			repo := "sha512/" + strings.ReplaceAll(strings.ToLower(tt.name), " ", "-")
			tt.push(t, repo, d, b)
			s.checkBlob(t, repo, d, b)
			resp, _ := s.do(t, http.MethodHead, "/v2/"+repo+"/blobs/"+d, nil, nil)
			if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(b)) {
				t.Errorf("HEAD /v2/%s/blobs/%s = %s, length %d, want 200, length %d", repo, d, resp.Status, resp.ContentLength, len(b))
			}
		})
	}
}

func TestE2EConcurrentPushes(t *testing.T) {
	s := startServer(t)
	// Every image shares the same layers, so pushes race on the same blobs
	// both within one repository and across several.
	base, err := random.Image(1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	imgs := make([]v1.Image, n)
	for i := range imgs {
		l, err := random.Layer(64<<10, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		if imgs[i], err = mutate.AppendLayers(base, l); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, n)
	for i, img := range imgs {
		ref := s.ref(t, fmt.Sprintf("race/r%d:v%d", i%2, i))
		go func() { errs <- remote.Write(ref, img) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("concurrent remote.Write = %v", err)
		}
	}
	for i, img := range imgs {
		pullWhole(t, s.ref(t, fmt.Sprintf("race/r%d:v%d", i%2, i)), img)
	}
}
