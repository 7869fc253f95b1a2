package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The usage history: the store's totals once a day, for the dashboard's
// chart of storage over time. Days older than usageKeep are deleted as
// new ones are written.
//
//	usage   day "2006-01-02" (UTC) → JSON Usage
var bucketUsage = []byte("usage")

// usageKeep is how many days of history are kept.
const usageKeep = 730

// Usage is the store's totals on one day.
type Usage struct {
	Day          string `json:"date"` // 2006-01-02, UTC
	BlobBytes    int64  `json:"bytes"`
	Blobs        int    `json:"blobs"`
	Repositories int    `json:"repositories"`
}

// RecordUsage stores st as day's totals, replacing any earlier ones of
// that day, and deletes days more than usageKeep before it.
func (s *Store) RecordUsage(ctx context.Context, day time.Time, st Stats) error {
	u := Usage{Day: day.UTC().Format(time.DateOnly), BlobBytes: st.BlobBytes, Blobs: st.Blobs, Repositories: st.Repositories}
	v, err := json.Marshal(u)
	if err != nil {
		return err
	}
	oldest := []byte(day.UTC().AddDate(0, 0, -usageKeep).Format(time.DateOnly))
	return s.commit.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketUsage)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil && string(k) < string(oldest); k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return b.Put([]byte(u.Day), v)
	})
}

// UsageHistory returns the recorded days since since (a day, UTC), oldest
// first; none recorded is an empty list.
func (s *Store) UsageHistory(ctx context.Context, since time.Time) ([]Usage, error) {
	out := []Usage{}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsage)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek([]byte(since.UTC().Format(time.DateOnly))); k != nil; k, v = c.Next() {
			var u Usage
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("storage: usage of %s: %w", k, err)
			}
			out = append(out, u)
		}
		return nil
	})
	return out, err
}

// hasUsage reports whether day's totals are recorded.
func (s *Store) hasUsage(day time.Time) bool {
	found := false
	s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketUsage); b != nil {
			found = b.Get([]byte(day.UTC().Format(time.DateOnly))) != nil
		}
		return nil
	})
	return found
}

// usageCheckEvery is how often TrackUsage looks whether today is recorded:
// the look is one key read; the count it may start reads every blob record.
const usageCheckEvery = time.Hour

// TrackUsage records the store's totals at once if today has none, then
// once a day, until ctx is done. onErr, if not nil, is told of failures.
func (s *Store) TrackUsage(ctx context.Context, onErr func(error)) {
	t := time.NewTicker(usageCheckEvery)
	defer t.Stop()
	for {
		if now := time.Now(); !s.hasUsage(now) {
			st, err := s.Stats(ctx)
			if err == nil {
				err = s.RecordUsage(ctx, now, st)
			}
			if err != nil && ctx.Err() == nil && onErr != nil {
				onErr(err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
