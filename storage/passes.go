package storage

import (
	"context"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The record of maintenance passes: each GC or retention pass that ran,
// whoever started it, newest last, kept to PassesMax entries so that the
// dashboard's history survives a restart and shows passes run from the
// command line without a server.
//
//	passes   sequence (8 bytes, big-endian) → JSON Pass
var bucketPasses = []byte("passes")

// PassesMax is how many passes the record keeps.
const PassesMax = 50

// Pass is one GC or retention pass and what it deleted.
type Pass struct {
	Kind    string    `json:"kind"` // "gc" or "retention"
	By      string    `json:"by"`   // "schedule", "cli" or "dashboard"
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	// Tags deleted by retention; manifests by either.
	Tags      int `json:"tags,omitempty"`
	Manifests int `json:"manifests"`
	// What GC deleted: blob links, blobs, uploads, unknown files, and
	// the bytes freed.
	Links   int    `json:"links,omitempty"`
	Blobs   int    `json:"blobs,omitempty"`
	Uploads int    `json:"uploads,omitempty"`
	Files   int    `json:"files,omitempty"`
	Bytes   int64  `json:"bytes,omitempty"`
	Skipped int    `json:"skipped,omitempty"`
	Failed  int    `json:"failed,omitempty"`
	Error   string `json:"error,omitempty"`
}

// AppendPass records p, and forgets the oldest beyond PassesMax in the
// same transaction.
func (s *Store) AppendPass(ctx context.Context, p Pass) error {
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return s.commit.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketPasses)
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put(seqKey(seq), v); err != nil {
			return err
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil && seqOf(k)+PassesMax <= seq; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListPasses returns the recorded passes, newest first.
func (s *Store) ListPasses(ctx context.Context) ([]Pass, error) {
	var out []Pass
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPasses)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var p Pass
			if json.Unmarshal(v, &p) == nil {
				out = append(out, p)
			}
		}
		return nil
	})
	return out, err
}
