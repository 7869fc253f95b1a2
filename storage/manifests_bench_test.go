package storage

import (
	"fmt"
	"testing"
)

// BenchmarkGetManifest measures a manifest GET by tag and by digest in a
// store of 1,000 repositories, the server's share of a pull.
func BenchmarkGetManifest(b *testing.B) {
	s, err := Open(b.Context(), Config{Driver: "filesystem", Root: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	fillRepoData(b, s, 0, 1000)
	m, err := s.GetManifest(b.Context(), "team-500/app", "v3")
	if err != nil {
		b.Fatal(err)
	}
	for _, ref := range []string{"v3", string(m.Digest)} {
		b.Run(fmt.Sprintf("ref=%.9s", ref), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.GetManifest(b.Context(), "team-500/app", ref); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
