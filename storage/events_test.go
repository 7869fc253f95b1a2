package storage

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// putTestManifest pushes a config-less manifest naming blob d, under tags.
func putTestManifest(t *testing.T, s *Store, repo string, n int, tags ...string) digest.Digest {
	t.Helper()
	content := []byte(`{"schemaVersion":2,"n":` + string(rune('0'+n)) + `}`)
	m := Manifest{Digest: digest.FromBytes(content), MediaType: "application/vnd.oci.image.manifest.v1+json", Content: content}
	if err := s.PutManifest(context.Background(), repo, m, tags); err != nil {
		t.Fatal(err)
	}
	return m.Digest
}

type eventSummary struct {
	kind EventKind
	repo string
	d    digest.Digest
	tags string
}

func summarize(evs []Event) []eventSummary {
	var out []eventSummary
	for _, e := range evs {
		out = append(out, eventSummary{e.Kind, e.Repo, e.Digest, strings.Join(e.Tags, ",")})
	}
	return out
}

// TestEvents: pushes and deletes are recorded in order for each consumer,
// survive a reopen, wake waiters, and go once every consumer passed them;
// cache fills and changes made before recording started are not events.
func TestEvents(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openAt(t, root)
	before := putTestManifest(t, s, "team/app", 0, "old") // not recorded
	fresh, err := s.RecordEvents([]string{"edge", "backup"})
	if err != nil || len(fresh) != 2 {
		t.Fatalf("RecordEvents = %v, %v; want both consumers fresh", fresh, err)
	}
	woken := s.EventsAdded()
	d1 := putTestManifest(t, s, "team/app", 1, "v1", "latest")
	select {
	case <-woken:
	case <-time.After(5 * time.Second):
		t.Fatal("EventsAdded was not closed by a push")
	}
	cached := Manifest{Digest: digest.FromString("{}"), MediaType: "application/vnd.oci.image.manifest.v1+json", Content: []byte("{}")}
	if err := s.PutCachedManifest(ctx, "docker.io/library/x", cached, []string{"1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTag(ctx, "team/app", "latest"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteManifest(ctx, "team/app", before); err != nil {
		t.Fatal(err)
	}
	want := []Event{
		{Kind: EventPush, Repo: "team/app", Digest: d1, Tags: []string{"v1", "latest"}},
		{Kind: EventDeleteTag, Repo: "team/app", Digest: d1, Tags: []string{"latest"}},
		{Kind: EventDeleteManifest, Repo: "team/app", Digest: before},
	}
	s.Close()

	s = openAt(t, root)
	defer s.Close()
	if fresh, err := s.RecordEvents([]string{"edge", "backup"}); err != nil || len(fresh) != 0 {
		t.Fatalf("RecordEvents after reopen = %v, %v; want no fresh consumer", fresh, err)
	}
	got, err := s.Events(ctx, "edge", 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(summarize(got), summarize(want)) {
		t.Fatalf("events = %+v, want %+v", got, want)
	}
	if n, oldest, _ := s.EventBacklog("edge"); n != 3 || oldest.IsZero() {
		t.Errorf("EventBacklog = %d, %v; want 3 and a time", n, oldest)
	}
	if err := s.AckEvents(ctx, "edge", got[1].Seq); err != nil {
		t.Fatal(err)
	}
	if evs, _ := s.Events(ctx, "edge", 10); len(evs) != 1 || evs[0].Kind != EventDeleteManifest {
		t.Errorf("events after the ack = %+v, want the manifest delete only", evs)
	}
	if evs, _ := s.Events(ctx, "backup", 10); len(evs) != 3 {
		t.Errorf("backup's events after edge's ack = %d, want 3", len(evs))
	}
	// Dropping backup leaves only what edge still needs.
	if _, err := s.RecordEvents([]string{"edge"}); err != nil {
		t.Fatal(err)
	}
	if n := s.eventCount(); n != 1 {
		t.Errorf("%d events kept, want 1", n)
	}
	if _, err := s.Events(ctx, "backup", 10); err == nil {
		t.Errorf("Events of a dropped consumer succeeded")
	}
}

func (s *Store) eventCount() (n int) {
	s.metaDB().View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketEvents).Stats().KeyN
		return nil
	})
	return n
}
