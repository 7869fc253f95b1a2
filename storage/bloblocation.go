package storage

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// bucketBlobKeys holds driver key → digest for every blob stored
// somewhere other than its blob key (blobRecord.Key), so the orphan scan
// knows the key and a lookup by key needs no scan of every blob.
var bucketBlobKeys = []byte("blobkeys")

// Sealer is implemented by drivers that have no cheap rename, such as S3,
// where a Move copies every byte: Store leaves a verified upload where
// its bytes are and records that key as the blob's location.
type Sealer interface {
	// Seal readies key to be read as a blob by Reader, for as long as
	// nothing writes it, and returns its size and whether it is one
	// object, which RedirectURL serves; a key still in pieces is served
	// by the registry until it is composed (s3compose.go). It returns
	// ErrNotFound if key does not exist.
	Seal(ctx context.Context, key string) (size int64, whole bool, err error)
}

// blobLocation returns the driver key holding blob d's bytes: its blob
// key, unless its record names another.
func blobLocation(tx *bolt.Tx, d digest.Digest) string {
	if rec, ok := decodeBlobRecord(tx.Bucket(bucketBlobs).Get(digestKey(d))); ok && rec.Key != "" {
		return rec.Key
	}
	return blobKey(d)
}

// location is blobLocation in its own transaction.
func (s *Store) location(d digest.Digest) string {
	var key string
	s.view(func(tx *bolt.Tx) error {
		key = blobLocation(tx, d)
		return nil
	})
	return key
}

// putBlobRecord records blob d of size bytes whose bytes are at key.
func putBlobRecord(tx *bolt.Tx, d digest.Digest, rec blobRecord) error {
	if rec.Key == blobKey(d) {
		rec.Key = ""
	}
	if rec.Key != "" {
		b, err := tx.CreateBucketIfNotExists(bucketBlobKeys)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(rec.Key), []byte(d)); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketBlobs).Put(digestKey(d), encodeBlobRecord(rec))
}

// deleteBlobRecord removes blob d's record and returns the key its bytes
// are at.
func deleteBlobRecord(tx *bolt.Tx, d digest.Digest) (string, error) {
	key := blobLocation(tx, d)
	if key != blobKey(d) {
		for _, name := range [][]byte{bucketBlobKeys, bucketPieced} {
			if b := tx.Bucket(name); b != nil {
				if err := b.Delete([]byte(key)); err != nil {
					return "", err
				}
			}
		}
	}
	return key, tx.Bucket(bucketBlobs).Delete(digestKey(d))
}

// locatedBlob reports whether key holds the bytes of a recorded blob
// stored away from its blob key.
func locatedBlob(tx *bolt.Tx, key string) bool {
	b := tx.Bucket(bucketBlobKeys)
	return b != nil && b.Get([]byte(key)) != nil
}

// sealUpload readies the verified bytes of upload id to be read where
// they are, for a Sealer, checks their size, and reports whether they
// are one object.
func (s *Store) sealUpload(ctx context.Context, sl Sealer, id string, d digest.Digest, size int64) (bool, error) {
	got, whole, err := sl.Seal(ctx, uploadKey(id))
	if err != nil {
		return false, err
	}
	if got != size {
		return false, fmt.Errorf("blob %s: stored %d bytes, received %d", d, got, size)
	}
	return whole, nil
}
