package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/minio/minio-go/v7"

	"github.com/nora-registry/nora/storage/s3test"
)

// useStorage rewrites the server's configuration to store blobs as
// storage says, keeping the rest; it takes effect at the next start.
func (s *e2eServer) useStorage(storage string) {
	s.t.Helper()
	cfg := fmt.Sprintf("[server]\nlisten = \"127.0.0.1:0\"\n\n[log]\nformat = \"json\"\nlevel = \"info\"\n\n%s", storage)
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// pushImages pushes n random images to repo:v0…v(n-1) and returns them.
func pushImages(t *testing.T, s *e2eServer, repo string, n int) []v1.Image {
	t.Helper()
	var imgs []v1.Image
	for i := range n {
		img, err := random.Image(int64(256<<10*(i+1)), 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(s.ref(t, fmt.Sprintf("%s:v%d", repo, i)), img); err != nil {
			t.Fatalf("push %s:v%d = %v", repo, i, err)
		}
		imgs = append(imgs, img)
	}
	return imgs
}

// checkImages pulls repo:v0… and checks digests and layer contents.
func checkImages(t *testing.T, s *e2eServer, repo string, imgs []v1.Image) {
	t.Helper()
	for i, img := range imgs {
		pullWhole(t, s.ref(t, fmt.Sprintf("%s:v%d", repo, i)), img)
	}
}

// TestE2EMigrate moves a registry to the other backend with `registry
// migrate` (filesystem to S3, or S3 to filesystem under
// NORA_E2E_STORAGE=s3), resumes, and serves every image from there.
func TestE2EMigrate(t *testing.T) {
	s := startServer(t)
	imgs := pushImages(t, s, "move/app", 3)
	old, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	other := s.dataDir + "-other.toml"
	var storage string
	if s.s3 == nil {
		storage = s3test.Start(t).TOML(s.dataDir)
	} else {
		storage = fmt.Sprintf("[storage]\ndriver = \"filesystem\"\nroot = %q\n", s.dataDir)
	}
	if err := os.WriteFile(other, []byte(storage), 0o644); err != nil {
		t.Fatal(err)
	}
	migrate := func() string {
		t.Helper()
		out, err := exec.Command(registryBin, "migrate", "--from", s.config, "--to", other).CombinedOutput()
		if err != nil {
			t.Fatalf("registry migrate = %v\n%s", err, out)
		}
		return string(out)
	}
	// While the server runs, then again after it stops, for the blobs
	// pushed in between: the documented way to switch.
	out := migrate()
	if !strings.Contains(out, "0 failed") || strings.Contains(out, " 0 copied") {
		t.Errorf("first migrate:\n%s\nwant blobs copied, none failed", out)
	}
	imgs = append(imgs, pushImages(t, s, "move/late", 1)...)
	s.stop()
	out = migrate()
	if !strings.Contains(out, ": 3 copied (") || !strings.Contains(out, "), 9 already there (") || !strings.Contains(out, "), 0 failed;") {
		t.Errorf("second migrate:\n%s\nwant only the late image's 2 layers and config copied", out)
	}
	if err := os.WriteFile(s.config+".old", old, 0o644); err != nil {
		t.Fatal(err)
	}
	s.useStorage(storage)
	s.start()
	checkImages(t, s, "move/app", imgs[:3])
	checkImages(t, s, "move/late", imgs[3:])
	if out, err := exec.Command(registryBin, "migrate", "--from", other, "--to", other).CombinedOutput(); err == nil || !strings.Contains(string(out), "name the same blob store") {
		t.Errorf("migrate onto itself = %v\n%s\nwant a refusal", err, out)
	}
}

// TestE2ES3Faults stops the S3 server in the middle of a push and of a
// pull: the registry answers 503 UNAVAILABLE and logs why, keeps
// serving, records nothing for the blob that did not land, and once S3 is
// back every image pushes and pulls whole.
func TestE2ES3Faults(t *testing.T) {
	if e2eStorage() != "s3" {
		t.Skip("runs with NORA_E2E_STORAGE=s3 (make test runs that pass too)")
	}
	s := startServer(t)
	imgs := pushImages(t, s, "faults/app", 2)

	// S3 down: a monolithic blob upload and a pull both get 503.
	s.s3.Stop()
	blob := randomBytes(t, 1<<20)
	d := sha256of(blob)
	resp, body := s.do(t, http.MethodPost, "/v2/faults/app/blobs/uploads/?digest="+d, octet(len(blob)), blob)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "UNAVAILABLE") {
		t.Errorf("push with S3 down = %s %s, want 503 UNAVAILABLE", resp.Status, body)
	}
	layers, _ := imgs[0].Layers()
	ld, _ := layers[0].Digest()
	resp, body = s.do(t, http.MethodGet, "/v2/faults/app/blobs/"+ld.String(), nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "UNAVAILABLE") {
		t.Errorf("pull with S3 down = %s %s, want 503 UNAVAILABLE", resp.Status, body)
	}
	if resp, _ := s.do(t, http.MethodGet, "/healthz", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz with S3 down = %s, want 200 (the process is alive)", resp.Status)
	}
	if resp, _ := s.do(t, http.MethodGet, "/readyz", nil, nil); resp.StatusCode == http.StatusOK {
		t.Errorf("/readyz with S3 down = %s, want not ready", resp.Status)
	}
	if resp, _ := s.do(t, http.MethodHead, "/v2/faults/app/blobs/"+d, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD of the blob that did not land = %s, want 404", resp.Status)
	}
	var logged bool
	for _, l := range s.logLines() {
		if e, _ := l["error"].(string); l["message"] == "request failed" && strings.Contains(e, "blob store unavailable") {
			logged = true
		}
	}
	if !logged {
		t.Errorf("no log line names the unavailable blob store")
	}

	// S3 back: the same push succeeds and everything pulls whole.
	s.s3.Start()
	resp, body = s.do(t, http.MethodPost, "/v2/faults/app/blobs/uploads/?digest="+d, octet(len(blob)), blob)
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("push after S3 is back = %s %s, want 201", resp.Status, body)
	}
	checkImages(t, s, "faults/app", imgs)
	more := pushImages(t, s, "faults/more", 2)
	checkImages(t, s, "faults/more", more)

	// In the middle of a chunked upload: the chunk sent while S3 is down
	// fails, the session keeps what was committed, and the client resumes.
	data := randomBytes(t, 14<<20)
	resp, _ = s.do(t, http.MethodPost, "/v2/faults/chunked/blobs/uploads/", nil, nil)
	loc := resp.Header.Get("Location")
	patch := func(from, to int) *http.Response {
		h := octet(to - from)
		h.Set("Content-Range", fmt.Sprintf("%d-%d", from, to-1))
		resp, _ := s.do(t, http.MethodPatch, loc, h, data[from:to])
		if l := resp.Header.Get("Location"); l != "" {
			loc = l
		}
		return resp
	}
	if resp := patch(0, 6<<20); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first chunk = %s, want 202", resp.Status)
	}
	s.s3.Stop()
	if resp := patch(6<<20, 12<<20); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("chunk with S3 down = %s, want 503", resp.Status)
	}
	s.s3.Start()
	resp, _ = s.do(t, http.MethodGet, loc, nil, nil)
	if got := resp.Header.Get("Range"); got != fmt.Sprintf("0-%d", 6<<20-1) {
		t.Errorf("upload status after the failed chunk: Range %q, want the first chunk only", got)
	}
	if resp := patch(6<<20, 12<<20); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("chunk again once S3 is back = %s, want 202", resp.Status)
	}
	if resp := patch(12<<20, len(data)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("last chunk = %s, want 202", resp.Status)
	}
	cd := sha256of(data)
	if resp, body := s.do(t, http.MethodPut, withQuery(loc, "digest", cd), nil, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("finish = %s %s, want 201", resp.Status, body)
	}

	// In the middle of a pull: the response is cut short (its length was
	// already sent), and the next pull is whole. 64 MiB is more than the
	// socket buffers between S3, the registry and this client hold, so
	// the bytes cannot all be on their way when S3 stops.
	big := randomBytes(t, 64<<20)
	bd := sha256of(big)
	if resp, body := s.do(t, http.MethodPost, "/v2/faults/big/blobs/uploads/?digest="+bd, octet(len(big)), big); resp.StatusCode != http.StatusCreated {
		t.Fatalf("push 64 MiB = %s %s, want 201", resp.Status, body)
	}
	req, _ := http.NewRequest(http.MethodGet, s.url("/v2/faults/big/blobs/"+bd), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatalf("start of pull = %v", err)
	}
	s.s3.Stop()
	rest, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Errorf("pull cut by S3 stopping: %d of %d bytes and no error, want an error", len(head)+len(rest), len(big))
	}
	s.s3.Start()
	resp, body = s.do(t, http.MethodGet, "/v2/faults/big/blobs/"+bd, nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, big) {
		t.Errorf("pull after S3 is back = %s, %d bytes; want 200 and the blob", resp.Status, len(body))
	}
	resp, body = s.do(t, http.MethodGet, "/v2/faults/chunked/blobs/"+cd, nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Errorf("pull of the chunked blob = %s, %d bytes; want 200 and the blob", resp.Status, len(body))
	}
	want := map[string]bool{d: true, cd: true, bd: true}
	for _, img := range append(imgs, more...) {
		for _, dg := range imageBlobs(t, img) {
			want[dg.String()] = true
		}
	}
	wantBucketHolds(t, s.s3, want)
}

// wantBucketHolds checks that the bucket holds one key per blob of want,
// wherever the registry keeps it (an object, or the segments of a chunked
// upload, read in order), each hashing to its digest, and no multipart
// upload: nothing a fault left behind.
func wantBucketHolds(t *testing.T, srv *s3test.Server, want map[string]bool) {
	t.Helper()
	mc := srv.Client()
	got := map[string]string{}
	var key string
	h := sha256.New()
	done := func() {
		if key == "" {
			return
		}
		dg := fmt.Sprintf("sha256:%x", h.Sum(nil))
		if !want[dg] || got[dg] != "" {
			t.Errorf("key %s (%s) is no blob, or a second copy of one", key, dg)
		}
		got[dg] = key
		h.Reset()
	}
	for obj := range mc.ListObjects(t.Context(), srv.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		if k, _, _ := strings.Cut(obj.Key, ".seg."); k != key {
			done()
			key = k
		}
		rc, err := mc.GetObject(t.Context(), srv.Bucket, obj.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	done()
	for dg := range want {
		if got[dg] == "" {
			t.Errorf("blob %s has no object in the bucket", dg)
		}
	}
	if ups := srv.MultipartUploads(); len(ups) != 0 {
		t.Errorf("multipart uploads left in the bucket: %q", ups)
	}
}

// TestE2ES3MinIOLeftovers runs the registry on MinIO, whose upload listing
// shows no uploads by prefix, and kills it in the middle of two pushes
// with parts already sent: one whose digest comes first (a multipart
// upload of the blob's key) and one PATCH of unknown length (a multipart
// upload of the upload's key). The next start aborts both, and the bucket
// holds exactly the blobs pushed afterwards.
func TestE2ES3MinIOLeftovers(t *testing.T) {
	if e2eStorage() == "s3" {
		t.Skip("runs in the filesystem pass, with its own MinIO")
	}
	mc := s3test.StartMinIO(t)
	s := startServer(t)
	s.stop()
	s.useStorage(mc.TOML(s.dataDir, "part_size_mib = 5"))
	s.start()

	blob := randomBytes(t, 30<<20)
	resp, _ := s.do(t, http.MethodPost, "/v2/cut/app/blobs/uploads/", nil, nil)
	loc := resp.Header.Get("Location")
	send := func(method, path string, size int64) {
		pr, pw := io.Pipe()
		req, _ := http.NewRequest(method, s.url(path), pr)
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/octet-stream")
		go func() {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		pw.Write(blob[:12<<20]) // two parts, and never the rest
		t.Cleanup(func() { pw.CloseWithError(io.ErrUnexpectedEOF) })
	}
	send(http.MethodPost, "/v2/cut/app/blobs/uploads/?digest="+sha256of(blob), int64(len(blob)))
	send(http.MethodPatch, strings.TrimPrefix(loc, s.url("")), -1)
	for deadline := time.Now().Add(20 * time.Second); len(mc.MultipartUploads()) < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("multipart uploads while two pushes are under way: %q, want 2", mc.MultipartUploads())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.kill()
	s.start()
	imgs := pushImages(t, s, "cut/after", 1)
	want := map[string]bool{}
	for _, dg := range imageBlobs(t, imgs[0]) {
		want[dg.String()] = true
	}
	wantBucketHolds(t, mc, want)
}
