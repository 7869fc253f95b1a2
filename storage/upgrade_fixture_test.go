package storage

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// TestWriteFixture writes the metadata of fixtureStore, gzipped, to the
// file NORA_WRITE_META_FIXTURE names: the upgrade test's input, as the
// code of the format being upgraded from writes it.
func TestWriteFixture(t *testing.T) {
	out := os.Getenv("NORA_WRITE_META_FIXTURE")
	if out == "" {
		t.Skip("NORA_WRITE_META_FIXTURE unset")
	}
	root := t.TempDir()
	s := openAt(t, root)
	fixtureStore(t, s)
	if err := s.Close(); err != nil { // flushes pull times
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(root, "meta.db"), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	db.Close()
	// Past its data the file holds only the reserve's zeros.
	data, err := os.ReadFile(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(data[:size])
	zw.Close()
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fixtureStore stores a little of everything the metadata holds per
// repository: images, an index, a referrer with annotations, tags, a tag
// check, pull times, a blob linked but unreferenced, a sha512 blob, a
// cached manifest whose blobs are absent, and a repository holding only
// a link.
func fixtureStore(t *testing.T, s *Store) {
	ctx := t.Context()
	layer := pushBlob(t, s, "library/alpine", []byte("alpine layer"))
	cfg1 := pushBlob(t, s, "library/alpine", []byte("alpine config 1"))
	cfg2 := pushBlob(t, s, "library/alpine", []byte("alpine config 2"))
	loose := pushBlob(t, s, "library/alpine", []byte("linked, never referenced"))
	sig := pushBlob(t, s, "library/alpine", []byte("signature"))
	img1 := fixtureImage(cfg1, layer)
	img2 := fixtureImage(cfg2, layer)
	putManifest(t, s, "library/alpine", img1, "latest", "3.20")
	putManifest(t, s, "library/alpine", img2)
	idxContent := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d},{"mediaType":%q,"digest":%q,"size":%d}]}`,
		ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest, img1.Digest, len(img1.Content), ocispec.MediaTypeImageManifest, img2.Digest, len(img2.Content))
	idx := Manifest{Digest: digest.FromBytes(idxContent), MediaType: ocispec.MediaTypeImageIndex, Content: idxContent,
		Manifests: []digest.Digest{img1.Digest, img2.Digest}}
	putManifest(t, s, "library/alpine", idx, "multi")
	sigContent := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"artifactType":"application/vnd.example.sig","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[],"subject":{"mediaType":%q,"digest":%q,"size":%d},"annotations":{"org.example.signed":"yes"}}`,
		ocispec.MediaTypeImageManifest, sig, ocispec.MediaTypeImageManifest, img1.Digest, len(img1.Content))
	putManifest(t, s, "library/alpine", Manifest{Digest: digest.FromBytes(sigContent), MediaType: ocispec.MediaTypeImageManifest, Content: sigContent,
		ArtifactType: "application/vnd.example.sig", Annotations: map[string]string{"org.example.signed": "yes"}, Subject: img1.Digest, Blobs: []digest.Digest{sig}})
	_ = loose

	big := []byte("a layer named by sha512")
	sum := sha512.Sum512(big)
	d512 := digest.NewDigestFromEncoded(digest.SHA512, hex.EncodeToString(sum[:]))
	if _, err := s.PutBlob(ctx, "team/app", d512, int64(len(big)), bytes.NewReader(big)); err != nil {
		t.Fatal(err)
	}
	app := fixtureImage(d512)
	app.MediaType = "application/vnd.docker.distribution.manifest.v2+json"
	putManifest(t, s, "team/app", app, "v1", "stable")
	if err := s.RecordTagCheck(ctx, "team/app", "v1", app.Digest, time.Unix(1700000000, 123)); err != nil {
		t.Fatal(err)
	}
	missing := digest.FromString("never uploaded")
	cached := fixtureImage(missing)
	if err := s.PutCachedManifest(ctx, "docker.io/library/busybox", cached, []string{"latest"}); err != nil {
		t.Fatal(err)
	}
	pushBlob(t, s, "uploads/only", []byte("a blob pushed, no manifest yet"))
	s.RecordPull(ctx, "library/alpine", img1.Digest)
	s.RecordPull(ctx, "team/app", app.Digest)
}

func fixtureImage(config digest.Digest, layers ...digest.Digest) Manifest {
	var ls []byte
	for i, l := range layers {
		if i > 0 {
			ls = append(ls, ',')
		}
		ls = fmt.Appendf(ls, `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":12}`, l)
	}
	content := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":15},"layers":[%s]}`,
		ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, config, ls)
	return Manifest{Digest: digest.FromBytes(content), MediaType: ocispec.MediaTypeImageManifest, Content: content,
		ArtifactType: ocispec.MediaTypeImageConfig, Annotations: map[string]string{"org.opencontainers.image.version": "1"},
		Blobs: append([]digest.Digest{config}, layers...)}
}
