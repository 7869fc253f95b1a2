package registry

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nora-registry/nora/storage"
)

// newTestServer serves a registry over a fresh store in a temp dir.
func newTestServer(t testing.TB) (*httptest.Server, *storage.Store) {
	t.Helper()
	st, err := storage.Open(context.Background(), storage.Config{Driver: "filesystem", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(st))
	t.Cleanup(func() { srv.Close(); st.Close() })
	return srv, st
}

func TestRoundTripGGCR(t *testing.T) {
	srv, _ := newTestServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host + "/team/app:v1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("remote.Write = %v", err)
	}
	got, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("remote.Image = %v", err)
	}
	want, _ := img.Digest()
	gd, _ := got.Digest()
	if gd != want {
		t.Fatalf("digest = %s, want %s", gd, want)
	}
	layers, _ := got.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	idx, _ := random.Index(512, 1, 2)
	iref, _ := name.ParseReference(host + "/team/multi:latest")
	if err := remote.WriteIndex(iref, idx); err != nil {
		t.Fatalf("WriteIndex = %v", err)
	}
	// Cross-repo mount via ggcr.
	ref2, _ := name.ParseReference(host + "/other/app:v1")
	img2 := mutate.MediaType(img, "application/vnd.docker.distribution.manifest.v2+json")
	if err := remote.Write(ref2, img2); err != nil {
		t.Fatalf("remote.Write other = %v", err)
	}
}
