package ui

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/nora-registry/nora/storage"
)

// BenchmarkPages measures the server time of the overview, the repository
// list and a repository page over 10,000 repositories of 10 tags each
// (100,000 tags) and one of 10,000 tags, as a caller who may pull
// everything:
//
//	go test -run '^$' -bench '^BenchmarkPages$' -benchtime 200x ./ui
func BenchmarkPages(b *testing.B) {
	const repos, tags = 10000, 10
	dir := b.TempDir()
	store, err := storage.Open(b.Context(), storage.Config{Driver: "filesystem", Root: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	start := time.Now()
	fillRepos(b, store, repos, tags)
	fillBig(b, store, "big/app", 10000)
	b.Logf("filled %d repositories, %d tags in %s", repos, repos*tags, time.Since(start).Round(time.Millisecond))
	h, err := New(DefaultConfig(), store, dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, path := range []string{
		"/ui/", // counts from the cached snapshot after the first run
		"/ui/repositories",
		"/ui/repositories?q=team-9*/**", // a glob whose matches come last
		"/ui/repositories?last=team-5000/app&n=1000", // a deep page
		"/ui/repositories/team-5000/app",
		"/api/v1/repositories?n=1000",
		"/api/v1/repositories/team-5000/app/tags",
		"/ui/repositories/big/app", // 10,000 tags
		"/api/v1/repositories/big/app/tags",
	} {
		b.Run(path, func(b *testing.B) {
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
				if w.Code != http.StatusOK {
					b.Fatalf("GET %s = %d", path, w.Code)
				}
			}
		})
	}
	b.Run("overview counting", func(b *testing.B) {
		for b.Loop() {
			// What each recount, in the background every 15 s at most, costs.
			if _, err := h.stats.count(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// fillRepos stores n repositories team-<i>/app, each with one image of
// two blobs and tags v0…v<tags-1>, from 16 goroutines so that commits
// share disk syncs.
func fillRepos(b *testing.B, s *storage.Store, n, tags int) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range next {
				repo := fmt.Sprintf("team-%d/app", i)
				var ds []digest.Digest
				for _, data := range [][]byte{[]byte("shared layer"), fmt.Appendf(nil, "config %d", i)} {
					d := digest.FromBytes(data)
					if _, err := s.PutBlob(b.Context(), repo, d, int64(len(data)), bytes.NewReader(data)); err != nil {
						b.Error(err)
						return
					}
					ds = append(ds, d)
				}
				content := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":1},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":12}]}`,
					ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, ds[1], ds[0])
				m := storage.Manifest{Digest: digest.FromBytes(content), MediaType: ocispec.MediaTypeImageManifest, Content: content, Blobs: ds}
				var names []string
				for t := range tags {
					names = append(names, fmt.Sprintf("v%d", t))
				}
				if err := s.PutManifest(b.Context(), repo, m, names); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// fillBig stores repository repo with one image under n tags.
func fillBig(b *testing.B, s *storage.Store, repo string, n int) {
	data := []byte("big layer")
	d := digest.FromBytes(data)
	if _, err := s.PutBlob(b.Context(), repo, d, int64(len(data)), bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	content := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":9},"layers":[]}`,
		ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, d)
	m := storage.Manifest{Digest: digest.FromBytes(content), MediaType: ocispec.MediaTypeImageManifest, Content: content, Blobs: []digest.Digest{d}}
	var names []string
	for t := range n {
		names = append(names, fmt.Sprintf("t%05d", t))
	}
	if err := s.PutManifest(b.Context(), repo, m, names); err != nil {
		b.Fatal(err)
	}
}
