package storage

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// sharedManifest returns GetManifestShared(repo, ref) twice, so the second
// answer comes from the cache when the first filled it.
func sharedManifest(t *testing.T, s *Store, repo, ref string) (Manifest, error) {
	t.Helper()
	if _, err := s.GetManifestShared(t.Context(), repo, ref); err != nil {
		return Manifest{}, err
	}
	return s.GetManifestShared(t.Context(), repo, ref)
}

func wantShared(t *testing.T, s *Store, repo, ref string, want Manifest) {
	t.Helper()
	got, err := sharedManifest(t, s, repo, ref)
	if err != nil || got.Digest != want.Digest || !bytes.Equal(got.Content, want.Content) || got.MediaType != want.MediaType {
		t.Fatalf("GetManifestShared(%s, %s) = %s, %v; want %s", repo, ref, got.Digest, err, want.Digest)
	}
}

// TestGetManifestSharedFollowsWrites: every change a call made is seen by
// the reads that start after it returns, whatever the cache held.
func TestGetManifestSharedFollowsWrites(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	m1, m2 := testManifest("one"), testManifest("two")
	putManifest(t, s, "app", m1, "latest")
	wantShared(t, s, "app", "latest", m1)
	wantShared(t, s, "app", string(m1.Digest), m1)

	putManifest(t, s, "app", m2, "latest") // the tag moves
	wantShared(t, s, "app", "latest", m2)
	wantShared(t, s, "app", string(m1.Digest), m1)

	if err := s.DeleteTag(ctx, "app", "latest"); err != nil {
		t.Fatal(err)
	}
	_, err := sharedManifest(t, s, "app", "latest")
	wantErr(t, "GetManifestShared(deleted tag)", err, ErrManifestNotFound)

	if err := s.DeleteManifest(ctx, "app", m1.Digest); err != nil {
		t.Fatal(err)
	}
	_, err = sharedManifest(t, s, "app", string(m1.Digest))
	wantErr(t, "GetManifestShared(deleted manifest)", err, ErrManifestNotFound)

	// A miss is not cached: a push after it is seen.
	putManifest(t, s, "app", m1, "latest")
	wantShared(t, s, "app", "latest", m1)
	wantShared(t, s, "app", string(m1.Digest), m1)
}

// TestGetManifestSharedConcurrentTagMoves moves a tag through versions
// while readers pull it: a read never answers a version older than the
// last one whose push had returned when the read started.
func TestGetManifestSharedConcurrentTagMoves(t *testing.T) {
	s := newStore(t)
	const versions = 200
	ms := make([]Manifest, versions)
	index := map[string]int{}
	for i := range ms {
		ms[i] = testManifest("v" + strconv.Itoa(i))
		index[string(ms[i].Digest)] = i
	}
	putManifest(t, s, "app", ms[0], "latest")
	var pushed atomic.Int64 // the last version whose PutManifest returned
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				floor := int(pushed.Load())
				m, err := s.GetManifestShared(t.Context(), "app", "latest")
				if err == nil && index[string(m.Digest)] < floor {
					err = fmt.Errorf("read version %d after version %d was pushed", index[string(m.Digest)], floor)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := 1; i < versions; i++ {
		putManifest(t, s, "app", ms[i], "latest")
		pushed.Store(int64(i))
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	wantShared(t, s, "app", "latest", ms[versions-1])
}

// TestHotManifestsBounded: the cache holds at most hotMaxEntries entries
// and hotMaxBytes of manifests, and skips large ones.
func TestHotManifestsBounded(t *testing.T) {
	var h hotManifests
	for i := range hotMaxEntries + 10 {
		h.put(hotKey{"app", strconv.Itoa(i)}, hotEntry{gen: 2, m: Manifest{Content: make([]byte, 10)}}, 2)
		if len(h.entries) > hotMaxEntries {
			t.Fatalf("after %d puts: %d entries, want at most %d", i+1, len(h.entries), hotMaxEntries)
		}
	}
	for i := range 100 {
		h.put(hotKey{"big", strconv.Itoa(i)}, hotEntry{gen: 2, m: Manifest{Content: make([]byte, hotMaxSize)}}, 2)
		if h.bytes > hotMaxBytes {
			t.Fatalf("after %d large puts: %d bytes, want at most %d", i+1, h.bytes, hotMaxBytes)
		}
	}
	h.put(hotKey{"app", "moved"}, hotEntry{gen: 2}, 4)
	if _, ok := h.entries[hotKey{"app", "moved"}]; ok {
		t.Errorf("put of an entry read before a write: stored, want dropped")
	}
}
