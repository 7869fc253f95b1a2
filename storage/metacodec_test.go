package storage

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func TestDigestEncoding(t *testing.T) {
	for _, tc := range []struct {
		d    digest.Digest
		size int // encoded
	}{
		{digest.FromString("a"), 33},
		{digest.SHA384.FromString("a"), 49},
		{digest.SHA512.FromString("a"), 65},
		// Not canonical: kept as text.
		{digest.Digest(strings.ToUpper(string(digest.FromString("a")))), 2 + 71},
		{"sha256:abc", 2 + 10},
		{"blake3:" + digest.Digest(strings.Repeat("0", 64)), 2 + 71},
		{"", 2},
	} {
		enc := digestKey(tc.d)
		if len(enc) != tc.size {
			t.Errorf("digestKey(%s) = %d bytes, want %d", tc.d, len(enc), tc.size)
		}
		if got, ok := decodeDigest(enc); !ok || got != tc.d {
			t.Errorf("decodeDigest(digestKey(%s)) = %s, %t", tc.d, got, ok)
		}
		if _, ok := decodeDigest(enc[:len(enc)-1]); ok && len(enc) > 2 {
			t.Errorf("decodeDigest(%x, cut short) = ok, want not", enc)
		}
	}
	for _, bad := range [][]byte{nil, {9}, {digestSHA256, 1, 2}, {digestText, 5, 'a'}} {
		if d, ok := decodeDigest(bad); ok {
			t.Errorf("decodeDigest(%x) = %s, want not ok", bad, d)
		}
	}
}

// TestRepoIDs: repository key prefixes sort as their ids and none starts
// another.
func TestRepoIDs(t *testing.T) {
	ids := []uint64{0, 1, 127, 128, 1<<14 - 1, 1 << 14, 1<<21 - 1, 1 << 21, 1<<28 - 1, 1 << 28, 1<<64 - 1}
	for i := 1; i < len(ids); i++ {
		a, b := appendRepoID(nil, ids[i-1]), appendRepoID(nil, ids[i])
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("appendRepoID(%d) = %x, not before appendRepoID(%d) = %x", ids[i-1], a, ids[i], b)
		}
		if bytes.HasPrefix(b, a) || bytes.HasPrefix(a, b) {
			t.Errorf("appendRepoID(%d) = %x and appendRepoID(%d) = %x: one starts the other", ids[i-1], a, ids[i], b)
		}
	}
}

func TestManifestRecord(t *testing.T) {
	pushed := time.Unix(1700000000, 42)
	for _, m := range []Manifest{
		{MediaType: "application/vnd.oci.image.manifest.v1+json", Content: []byte(`{"a":1}`), Pushed: pushed,
			Blobs: []digest.Digest{digest.FromString("c"), digest.SHA512.FromString("l")}},
		{MediaType: "application/x-odd", Content: []byte(`{}`), Pushed: pushed, Subject: digest.FromString("s"),
			Manifests: []digest.Digest{digest.FromString("m")}},
		{MediaType: "", Content: []byte{}, Pushed: pushed},
	} {
		d := digest.FromBytes(m.Content)
		rec := encodeManifest(m)
		got, err := decodeManifest(d, rec, true, true)
		if err != nil {
			t.Fatalf("decodeManifest(%s) = %v", m.MediaType, err)
		}
		want := m
		want.Digest, want.Size = d, int64(len(m.Content))
		if !got.Pushed.Equal(want.Pushed) {
			t.Errorf("decodeManifest(%s).Pushed = %v, want %v", m.MediaType, got.Pushed, want.Pushed)
		}
		got.Pushed = want.Pushed
		if !reflect.DeepEqual(got, want) {
			t.Errorf("decodeManifest(encodeManifest(%+v)) = %+v", want, got)
		}
		for i := range len(rec) - len(m.Content) {
			if _, err := decodeManifest(d, rec[:i], true, false); err == nil {
				t.Errorf("decodeManifest(%s cut to %d bytes) = nil error", m.MediaType, i)
			}
		}
	}
}

func TestReferrerRecord(t *testing.T) {
	m := Manifest{MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 490, ArtifactType: "application/x-sig",
		Annotations: map[string]string{"b": "2", "a": "1"}}
	var got Manifest
	if !decodeReferrer(encodeReferrer(m), &got) || !reflect.DeepEqual(got, m) {
		t.Errorf("decodeReferrer(encodeReferrer(%+v)) = %+v", m, got)
	}
	if decodeReferrer(encodeReferrer(m)[:5], &got) {
		t.Error("decodeReferrer(cut short) = true")
	}
}

func TestBlobRecord(t *testing.T) {
	for _, r := range []blobRecord{
		{Size: 0, Created: -3},
		{Size: 1 << 40, Created: time.Now().UnixNano()},
		{Size: 5, Created: 1, Key: "uploads/0123456789abcdef0123456789abcdef"},
	} {
		v := encodeBlobRecord(r)
		if got, ok := decodeBlobRecord(v); !ok || got != r {
			t.Errorf("decodeBlobRecord(encodeBlobRecord(%+v)) = %+v, %t", r, got, ok)
		}
		// Fields added later follow the key, empty if need be, and are
		// skipped.
		more := v
		if r.Key == "" {
			more = append(more, 0)
		}
		if got, ok := decodeBlobRecord(append(more, 7, 1, 'x')); !ok || got != r {
			t.Errorf("decodeBlobRecord(%+v and more) = %+v, %t", r, got, ok)
		}
		if _, ok := decodeBlobRecord(v[:len(v)-1]); ok {
			t.Errorf("decodeBlobRecord(%+v cut short) = ok", r)
		}
	}
}
