package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/nora-registry/nora/storage/s3test"
)

// s3Copies is the number of server-side copies the registry has asked
// S3 for, from its metrics.
func s3Copies(t *testing.T, s *e2eServer) float64 {
	t.Helper()
	resp, body := s.do(t, http.MethodGet, "/metrics", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %s", resp.Status)
	}
	var n float64
	re := regexp.MustCompile(`(?m)^nora_s3_requests_total\{operation="(CopyObject|UploadPartCopy)"\} (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(string(body), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		n += v
	}
	return n
}

// pushInChunks pushes data to repo as docker does (POST, a PATCH per
// chunk, PUT ?digest=), checks that the PUT answers 201 without a
// server-side copy, and returns the digest.
func pushInChunks(t *testing.T, s *e2eServer, repo string, data []byte, chunk int) string {
	t.Helper()
	resp, _ := s.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	loc := resp.Header.Get("Location")
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		h := octet(end - off)
		h.Set("Content-Range", fmt.Sprintf("%d-%d", off, end-1))
		resp, body := s.do(t, http.MethodPatch, loc, h, data[off:end])
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("PATCH %d-%d = %s %s", off, end-1, resp.Status, body)
		}
		loc = resp.Header.Get("Location")
	}
	d := sha256of(data)
	before := s3Copies(t, s)
	if resp, body := s.do(t, http.MethodPut, withQuery(loc, "digest", d), nil, nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT ?digest= = %s %s, want 201", resp.Status, body)
	}
	if n := s3Copies(t, s) - before; n != 0 {
		t.Errorf("server-side copies made by the final PUT = %v, want none", n)
	}
	return d
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// getBlobNoFollow sends a GET of blob d without following redirects.
func getBlobNoFollow(t *testing.T, s *e2eServer, repo, d, rng string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url("/v2/"+repo+"/blobs/"+d), nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestE2ES3ComposeChunked pushes blobs in chunks to a registry on S3 with
// redirects on, on versitygw and on MinIO. The final PUT answers 201
// without copying anything, and until the blob is composed into one
// object the registry serves it itself, ranges included. A GC pass
// starts the composition; the registry is killed in the middle of it. The
// next start aborts the cut copy and composes again; from then on GETs
// answer 307 to a URL serving the blob, and the bucket holds one object
// per blob and no multipart upload.
func TestE2ES3ComposeChunked(t *testing.T) {
	if e2eStorage() == "s3" {
		t.Skip("runs in the filesystem pass, with its own S3 servers")
	}
	for _, kind := range []string{"versitygw", "minio"} {
		t.Run(kind, func(t *testing.T) {
			srv := s3test.StartKind(t, kind)
			s := startServer(t)
			s.stop()
			s.useStorage(srv.TOML(s.dataDir, "part_size_mib = 5", "redirect = true", `compose_delay = "1h"`))
			s.start()

			const repo = "compose/app"
			blobs := map[string][]byte{}
			for _, size := range []int{20<<20 + 7, 60 << 20} {
				data := randomBytes(t, size)
				blobs[pushInChunks(t, s, repo, data, 5<<20)] = data
			}
			var segs int
			for obj := range srv.Client().ListObjects(t.Context(), srv.Bucket, minio.ListObjectsOptions{Recursive: true}) {
				if strings.Contains(obj.Key, ".seg.") {
					segs++
				}
			}
			if segs != 17 {
				t.Errorf("segment objects after the pushes = %d, want 17: the chunks where they landed", segs)
			}
			for d, data := range blobs {
				if resp, body := getBlobNoFollow(t, s, repo, d, ""); resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
					t.Errorf("GET in pieces = %s, %d bytes; want 200 and the blob from the registry", resp.Status, len(body))
				}
				resp, body := getBlobNoFollow(t, s, repo, d, "bytes=100-6291555")
				if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[100:6291556]) {
					t.Errorf("GET of a range in pieces = %s, %d bytes; want 206 and bytes 100-6291555", resp.Status, len(body))
				}
			}

			// The pass wakes the composer before it ends: the copy is
			// watched for from before the pass starts, and frozen as soon
			// as it shows, which may be before the command returns.
			caught := make(chan bool, 1)
			go func() {
				for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
					if len(srv.MultipartUploads()) > 0 {
						srv.Pause()
						caught <- true
						return
					}
				}
				caught <- false
			}()
			gc := exec.Command(registryBin, "gc", "--config", s.config)
			if err := gc.Start(); err != nil {
				t.Fatal(err)
			}
			if !<-caught {
				t.Fatal("no composition under way a minute after the GC pass started")
			}
			s.kill()
			gc.Wait() // cut short by the kill, or done
			srv.Resume()
			if len(srv.MultipartUploads()) == 0 {
				t.Error("the kill came after the composition: no multipart copy left to clean up")
			}

			s.start()
			for d, data := range blobs {
				var resp *http.Response
				for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
					var body []byte
					resp, body = getBlobNoFollow(t, s, repo, d, "")
					if resp.StatusCode == http.StatusTemporaryRedirect {
						break
					}
					if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
						t.Fatalf("GET before composition after the kill = %s, %d bytes; want 200 and the blob", resp.Status, len(body))
					}
					if time.Now().After(deadline) {
						t.Fatalf("GET of %s still served by the registry two minutes after the restart", d)
					}
				}
				u := resp.Header.Get("Location")
				resp, err := http.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
					t.Errorf("GET of the redirect's URL = %s, %d bytes; want 200 and the blob", resp.Status, len(body))
				}
			}
			// A part copy the killed process sent while S3 was frozen is
			// done by S3 after it resumes, and can outlast the abort made
			// at the restart; the next pass aborts what it left.
			if out, err := exec.Command(registryBin, "gc", "--config", s.config).CombinedOutput(); err != nil {
				t.Fatalf("registry gc = %v\n%s", err, out)
			}
			want := map[string]bool{}
			for d := range blobs {
				want[d] = true
			}
			wantBucketHolds(t, srv, want)
		})
	}
}
