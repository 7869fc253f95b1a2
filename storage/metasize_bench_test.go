package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// BenchmarkMetaSize measures the metadata bytes per manifest (the
// file's pages, and what it takes on disk: its pages and the reserve
// past them) of two stores, grown by concurrent pushes, then compacted,
// then grown by a tenth more: GC's benchmark data (100 repositories of small manifests, two
// blobs each, half of them tagged) and 20,000 one-image repositories of
// five tags each. NORA_META_BENCH_SCALE scales both (default 0.1; 1 is
// 100,000 manifests and 20,000 repositories):
//
//	NORA_META_BENCH_SCALE=1 go test -run '^$' -bench MetaSize -benchtime 1x ./storage
func BenchmarkMetaSize(b *testing.B) {
	scale := 0.1
	if v, err := strconv.ParseFloat(os.Getenv("NORA_META_BENCH_SCALE"), 64); err == nil && v > 0 {
		scale = v
	}
	for _, set := range []struct {
		name string
		n    int
		fill func(tb testing.TB, s *Store, from, to int)
	}{
		{"gc", int(100000 * scale), fillGCData},
		{"repos", int(20000 * scale), fillRepoData},
	} {
		b.Run(set.name, func(b *testing.B) {
			for b.Loop() {
				root := b.TempDir()
				s, err := Open(b.Context(), Config{Driver: "filesystem", Root: root})
				if err != nil {
					b.Fatal(err)
				}
				set.fill(b, s, 0, set.n)
				path := filepath.Join(root, metaFile)
				per := func(n int64) float64 { return float64(n) / float64(set.n) }
				dataSize := func() (data int64) {
					s.metaDB().View(func(tx *bolt.Tx) error {
						data = tx.Size()
						return nil
					})
					return data
				}
				b.ReportMetric(per(dataSize()), "data-B/manifest")
				b.ReportMetric(per(diskUse(b, path)), "disk-B/manifest")
				s.metaDB().View(func(tx *bolt.Tx) error {
					logBuckets(b, tx)
					return nil
				})
				res, err := s.Compact(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				// Once a commit after the compaction has allocated its
				// reserve.
				if err := s.commit.update(func(tx *bolt.Tx) error { return nil }); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(per(res.After), "compacted-data-B/manifest")
				b.ReportMetric(per(diskUse(b, path)), "compacted-disk-B/manifest")
				b.ReportMetric(res.Took.Seconds(), "compact-s")
				b.ReportMetric(float64(res.Held.Microseconds())/1000, "writes-held-ms")
				// A tenth more records after the compaction, pushed as before.
				set.fill(b, s, set.n, set.n+set.n/10)
				b.ReportMetric(float64(dataSize())/float64(set.n+set.n/10), "then-10%-more-data-B/manifest")
				s.Close()
			}
		})
	}
}

// logBuckets logs the pages and bytes of each top-level bucket.
func logBuckets(b *testing.B, tx *bolt.Tx) {
	tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
		st := bk.Stats()
		b.Logf("%-14s keys %8d  alloc %10d  inuse %10d  buckets %6d (inline %6d)",
			name, st.KeyN, st.BranchAlloc+st.LeafAlloc, st.BranchInuse+st.LeafInuse+st.InlineBucketInuse, st.BucketN, st.InlineBucketN)
		return nil
	})
}

// fill runs put(i) for i in [from, to) from 16 goroutines, so commits
// share disk syncs.
func fill(tb testing.TB, from, to int, put func(i int) error) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range next {
				if err := put(i); err != nil {
					tb.Error(err)
				}
			}
		})
	}
	for i := from; i < to; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

func putBytes(tb testing.TB, s *Store, repo string, data []byte) (digest.Digest, error) {
	d := digest.FromBytes(data)
	_, err := s.PutBlob(tb.Context(), repo, d, int64(len(data)), bytes.NewReader(data))
	return d, err
}

// fillGCData stores what gc.BenchmarkPass does: manifests from to to of
// two blobs each in 100 repositories, every other one tagged.
func fillGCData(tb testing.TB, s *Store, from, to int) {
	fill(tb, from, to, func(i int) error {
		repo := fmt.Sprintf("team/app%03d", i%100)
		d1, err := putBytes(tb, s, repo, fmt.Appendf(nil, "config %d", i))
		if err != nil {
			return err
		}
		d2, err := putBytes(tb, s, repo, fmt.Appendf(nil, "layer %d", i))
		if err != nil {
			return err
		}
		var tags []string
		if i%2 == 0 {
			tags = []string{fmt.Sprintf("v%d", i)}
		}
		content := fmt.Appendf(nil, `{"schemaVersion":2,"name":"%d"}`, i)
		m := Manifest{Digest: digest.FromBytes(content), MediaType: ocispec.MediaTypeImageManifest, Content: content, Blobs: []digest.Digest{d1, d2}}
		return s.PutManifest(tb.Context(), repo, m, tags)
	})
}

// fillRepoData stores repositories team-<from>/app to team-<to>/app,
// each with one image of a shared layer and its own config, tagged v0 to
// v4.
func fillRepoData(tb testing.TB, s *Store, from, to int) {
	fill(tb, from, to, func(i int) error {
		repo := fmt.Sprintf("team-%d/app", i)
		layer, err := putBytes(tb, s, repo, []byte("shared layer"))
		if err != nil {
			return err
		}
		config, err := putBytes(tb, s, repo, fmt.Appendf(nil, "config %d", i))
		if err != nil {
			return err
		}
		content := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":1},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":12}]}`,
			ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, config, layer)
		m := Manifest{Digest: digest.FromBytes(content), MediaType: ocispec.MediaTypeImageManifest, Content: content, Blobs: []digest.Digest{config, layer}}
		return s.PutManifest(tb.Context(), repo, m, []string{"v0", "v1", "v2", "v3", "v4"})
	})
}
