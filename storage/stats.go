package storage

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// Stats are the store's totals, for metrics.
type Stats struct {
	Repositories int
	Blobs        int
	BlobBytes    int64
	Uploads      int
}

// Stats counts repositories, blobs, their bytes and open uploads. It reads
// every blob record, so callers cache it rather than call it per request.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRepos).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			st.Repositories++
		}
		st.Uploads = tx.Bucket(bucketUploads).Stats().KeyN
		return tx.Bucket(bucketBlobs).ForEach(func(k, v []byte) error {
			if rec, ok := decodeBlobRecord(v); ok {
				st.Blobs++
				st.BlobBytes += rec.Size
			}
			return nil
		})
	})
	return st, err
}
