package storage

import (
	"context"
	"testing"
	"time"
)

func TestUsageHistory(t *testing.T) {
	s := openAt(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	if h, err := s.UsageHistory(ctx, time.Time{}); err != nil || len(h) != 0 {
		t.Fatalf("UsageHistory on a new store = %v, %v, want none", h, err)
	}
	day0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i, b := range []int64{100, 200, 300} {
		if err := s.RecordUsage(ctx, day0.AddDate(0, 0, i), Stats{BlobBytes: b, Blobs: i, Repositories: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// The same day again replaces its totals.
	if err := s.RecordUsage(ctx, day0.AddDate(0, 0, 2).Add(time.Hour), Stats{BlobBytes: 350}); err != nil {
		t.Fatal(err)
	}
	h, err := s.UsageHistory(ctx, day0.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].Day != "2026-01-02" || h[0].BlobBytes != 200 || h[1].BlobBytes != 350 {
		t.Fatalf("UsageHistory(since 2026-01-02) = %+v, want 2026-01-02 200, 2026-01-03 350", h)
	}
	// A day more than usageKeep later drops the old ones.
	if err := s.RecordUsage(ctx, day0.AddDate(0, 0, usageKeep+2), Stats{BlobBytes: 1}); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.UsageHistory(ctx, time.Time{}); len(h) != 2 || h[0].Day != "2026-01-03" {
		t.Fatalf("UsageHistory after %d days = %+v, want 2026-01-03 and the new day", usageKeep+2, h)
	}
	// TrackUsage records today at once.
	ctx2, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.TrackUsage(ctx2, func(err error) { t.Error(err) }); close(done) }()
	for deadline := time.Now().Add(5 * time.Second); !s.hasUsage(time.Now()); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("TrackUsage did not record today")
		}
	}
	cancel()
	<-done
}
