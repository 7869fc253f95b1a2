package storage

import (
	"testing"
	"time"
)

func TestDeleteTagOf(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	old, cur := testManifest("old"), testManifest("current")
	putManifest(t, s, "app", old, "a")
	putManifest(t, s, "app", cur, "a") // a moved to cur
	if deleted, err := s.DeleteTagOf(ctx, "app", "a", old.Digest); deleted || err != nil {
		t.Errorf("DeleteTagOf(a, old digest) = %v, %v; want false, nil", deleted, err)
	}
	if deleted, err := s.DeleteTagOf(ctx, "nobody", "a", cur.Digest); deleted || err != nil {
		t.Errorf("DeleteTagOf(unknown repo) = %v, %v; want false, nil", deleted, err)
	}
	if deleted, err := s.DeleteTagOf(ctx, "app", "a", cur.Digest); !deleted || err != nil {
		t.Errorf("DeleteTagOf(a, its digest) = %v, %v; want true, nil", deleted, err)
	}
	_, err := s.GetManifest(ctx, "app", "a")
	wantErr(t, "GetManifest(deleted tag)", err, ErrManifestNotFound)
	if _, err := s.GetManifest(ctx, "app", string(cur.Digest)); err != nil {
		t.Errorf("GetManifest(by digest) after DeleteTagOf = %v, want the manifest kept", err)
	}
}

// TestTagChecks: a tag's check time survives a reopen, counts only while
// the tag names the digest checked, and goes with its tag.
func TestTagChecks(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	s := openAt(t, root)
	a, b := testManifest("a"), testManifest("b")
	putManifest(t, s, "app", a, "1", "2", "3")
	at := time.Unix(1700000000, 42)
	for _, tag := range []string{"1", "2", "3"} {
		if err := s.RecordTagCheck(ctx, "app", tag, a.Digest, at); err != nil {
			t.Fatalf("RecordTagCheck(%s) = %v", tag, err)
		}
	}
	if err := s.RecordTagCheck(ctx, "app", "4", a.Digest, at); err != nil { // no such tag
		t.Fatalf("RecordTagCheck(missing tag) = %v", err)
	}
	s.Close()
	s = openAt(t, root)
	defer s.Close()
	if got, ok := s.TagChecked(ctx, "app", "1"); !ok || !got.Equal(at) {
		t.Errorf("TagChecked(1) after reopen = %v, %v; want %v, true", got, ok, at)
	}
	putManifest(t, s, "app", b, "2") // 2 moves
	if err := s.DeleteTag(ctx, "app", "3"); err != nil {
		t.Fatal(err)
	}
	putManifest(t, s, "app", a, "3") // 3 again, not checked since
	for _, tag := range []string{"2", "3", "4"} {
		if got, ok := s.TagChecked(ctx, "app", tag); ok {
			t.Errorf("TagChecked(%s) = %v, true; want none", tag, got)
		}
	}
	if err := s.DeleteManifest(ctx, "app", a.Digest); err != nil {
		t.Fatal(err)
	}
	putManifest(t, s, "app", a, "1")
	if got, ok := s.TagChecked(ctx, "app", "1"); ok {
		t.Errorf("TagChecked(1) after its manifest was deleted and pushed again = %v, true; want none", got)
	}
}
