package storage

import (
	"errors"
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestRetagManifest: a manifest pushed again is recorded as PutManifest
// records it (tags, push event, reference checks, subject), and anything
// RetagManifest cannot vouch for is left to PutManifest untouched.
func TestRetagManifest(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	if _, err := s.RecordEvents([]string{"edge"}); err != nil {
		t.Fatal(err)
	}
	layer := pushBlob(t, s, "app", []byte("layer"))
	m := testManifest("one", layer)
	m.Subject = digest.FromString("subject")
	putManifest(t, s, "app", m, "v1")

	subject, err := s.RetagManifest(ctx, "app", m.Digest, m.MediaType, []string{"v2", "v3"})
	if err != nil || subject != m.Subject {
		t.Fatalf("RetagManifest = %s, %v; want its subject %s", subject, err, m.Subject)
	}
	wantTags(t, s, "app", "v1", "v2", "v3")
	events, err := s.Events(ctx, "edge", 10)
	if err != nil || len(events) != 2 || events[1].Kind != EventPush || events[1].Digest != m.Digest || fmt.Sprint(events[1].Tags) != "[v2 v3]" {
		t.Fatalf("events = %+v, %v; want the first push and a push of v2 and v3", events, err)
	}

	notHeld := []struct {
		name, repo string
		d          digest.Digest
		mediaType  string
	}{
		{"another media type", "app", m.Digest, ocispec.MediaTypeImageIndex},
		{"another manifest", "app", digest.FromString("other"), m.MediaType},
		{"another repository", "other", m.Digest, m.MediaType},
	}
	for _, tc := range notHeld {
		if _, err := s.RetagManifest(ctx, tc.repo, tc.d, tc.mediaType, []string{"no"}); !errors.Is(err, ErrManifestNotFound) {
			t.Errorf("%s: RetagManifest = %v, want ErrManifestNotFound", tc.name, err)
		}
	}
	wantTags(t, s, "app", "v1", "v2", "v3")

	// A manifest a cache fill stored before its layer: a push of it must
	// still find the layer, as PutManifest requires.
	cached := testManifest("cached", digest.FromString("not here"))
	if err := s.PutCachedManifest(ctx, "app", cached, []string{"c1"}); err != nil {
		t.Fatal(err)
	}
	_, retagErr := s.RetagManifest(ctx, "app", cached.Digest, cached.MediaType, []string{"c2"})
	putErr := s.PutManifest(ctx, "app", cached, []string{"c2"})
	if !errors.Is(retagErr, ErrManifestBlobUnknown) || !errors.Is(putErr, ErrManifestBlobUnknown) {
		t.Fatalf("push of a cached manifest without its layer: RetagManifest = %v, PutManifest = %v; want ErrManifestBlobUnknown from both", retagErr, putErr)
	}
	wantTags(t, s, "app", "c1", "v1", "v2", "v3")
}
