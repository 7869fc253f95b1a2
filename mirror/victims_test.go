package mirror

import (
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// TestVictimsSharedBlob: a blob two upstreams link counts once in the
// total and is freed from it only with the last image referencing it.
func TestVictimsSharedBlob(t *testing.T) {
	u1, u2 := &Upstream{Name: "one"}, &Upstream{Name: "two"}
	x, y := digest.FromString("x"), digest.FromString("y")
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	i1 := &image{up: u1, repo: "one/a", bytes: 10, blobs: []digest.Digest{x}, used: at(1)}
	i2 := &image{up: u2, repo: "two/b", bytes: 10, blobs: []digest.Digest{x}, used: at(2)}
	i3 := &image{up: u1, repo: "one/c", bytes: 10, blobs: []digest.Digest{y}, used: at(3)}
	scan := func(total int64) *cacheScan {
		t1, t2, all := newTally(0), newTally(0), newTally(total)
		t1.size, t1.refs[x], t1.refs[y] = 220, 1, 1
		t2.size, t2.refs[x] = 110, 1
		all.size, all.refs[x], all.refs[y] = 230, 2, 1
		return &cacheScan{images: []*image{i3, i2, i1}, sizes: map[digest.Digest]int64{x: 100, y: 100},
			per: map[*Upstream]*tally{u1: t1, u2: t2}, total: all}
	}
	for _, tc := range []struct {
		total int64
		want  []*image
	}{
		{0, nil},
		{230, nil},
		{220, []*image{i1}},     // frees 10: x is still i2's
		{150, []*image{i1, i2}}, // then x goes: 110
		{100, []*image{i1, i2, i3}},
	} {
		sc := scan(tc.total)
		got := sc.victims(at(10), func(string) bool { return false })
		if len(got) != len(tc.want) {
			t.Errorf("victims(total cap %d) = %d images, want %d", tc.total, len(got), len(tc.want))
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("victims(total cap %d)[%d] = %s, want %s", tc.total, i, got[i].repo, tc.want[i].repo)
			}
		}
		if sc.total.size != 230 || sc.per[u1].size != 220 {
			t.Errorf("victims(total cap %d) changed the scan: sizes %d, %d", tc.total, sc.total.size, sc.per[u1].size)
		}
	}
}
