package storage

import "testing"

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
