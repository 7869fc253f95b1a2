package storage

import (
	"testing"
	"time"
)

func TestPassesBoundedNewestFirstAndKeptAcrossReopen(t *testing.T) {
	cfg := Config{Driver: "filesystem", Root: t.TempDir()}
	s, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Truncate(time.Second)
	for i := range PassesMax + 5 {
		if err := s.AppendPass(t.Context(), Pass{Kind: "gc", By: "cli", Started: start.Add(time.Duration(i) * time.Second), Blobs: i}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if s, err = Open(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.ListPasses(t.Context())
	if err != nil || len(got) != PassesMax {
		t.Fatalf("ListPasses = %d passes, %v; want %d", len(got), err, PassesMax)
	}
	if got[0].Blobs != PassesMax+4 || got[len(got)-1].Blobs != 5 || !got[0].Started.Equal(start.Add((PassesMax+4)*time.Second)) {
		t.Errorf("ListPasses = newest %+v, oldest %+v; want blobs %d then 5", got[0], got[len(got)-1], PassesMax+4)
	}
}
