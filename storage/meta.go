package storage

import (
	"encoding/binary"
	"encoding/json"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// The metadata layout in bbolt. Top-level buckets:
//
//	blobs    digest → blobRecord: every verified blob in the blob store
//	uploads  id → uploadRecord: open upload sessions
//	uploadcounts  "t" and "c " + client → open sessions, in total and per client
//	repos    name → bucket per repository, holding:
//	    m  digest → manifestRecord (metadata, then the manifest bytes)
//	    t  tag → push time and digest (encodeTag)
//	    b  digest → link time: blobs this repository may read
//	    r  subject digest + " " + referrer digest → referrer descriptor
//	    p  digest → last pull time of a manifest
//	    c  tag → when a cached tag last matched its upstream (tagcheck.go)
var (
	bucketBlobs   = []byte("blobs")
	bucketUploads = []byte("uploads")
	bucketRepos   = []byte("repos")

	subManifests = []byte("m")
	subTags      = []byte("t")
	subLinks     = []byte("b")
	subReferrers = []byte("r")
	subPulls     = []byte("p")
)

func createBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketBlobs, bucketUploads, bucketRepos} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

type blobRecord struct {
	Size    int64 `json:"size"`
	Created int64 `json:"created"`
	// Key is where the bytes are when not at the blob's key: on S3, the
	// upload that received them (see Sealer). Older records have none.
	Key string `json:"key,omitempty"`
}

// A tag record is the push time (8 bytes, big-endian Unix nanoseconds)
// followed by the digest: a manifest GET by tag decodes it without
// reflection.
func encodeTag(d digest.Digest, pushed time.Time) []byte {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(d)), uint64(pushed.UnixNano()))
	return append(v, d...)
}

func decodeTag(v []byte) (digest.Digest, time.Time, bool) {
	if len(v) < 8 {
		return "", time.Time{}, false
	}
	return digest.Digest(v[8:]), time.Unix(0, int64(binary.BigEndian.Uint64(v))), true
}

type uploadRecord struct {
	Repo      string `json:"repo"`
	Offset    int64  `json:"offset"`
	Algorithm string `json:"alg"`
	HashState []byte `json:"hash"`
	Started   int64  `json:"started"`
	// Touched is when bytes last arrived, 0 before the first.
	Touched int64 `json:"touched,omitempty"`
	// Owner alone may use the session, when set; Client is whose cap
	// it counts against (see Uploader).
	Owner  string `json:"owner,omitempty"`
	Client string `json:"client,omitempty"`
}

// repoBucket returns the bucket of repository name, or nil.
func repoBucket(tx *bolt.Tx, name string) *bolt.Bucket {
	return tx.Bucket(bucketRepos).Bucket([]byte(name))
}

// createRepoBucket returns the bucket of repository name, creating it and
// its sub-buckets.
func createRepoBucket(tx *bolt.Tx, name string) (*bolt.Bucket, error) {
	b, err := tx.Bucket(bucketRepos).CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return nil, err
	}
	for _, sub := range [][]byte{subManifests, subTags, subLinks, subReferrers, subPulls} {
		if _, err := b.CreateBucketIfNotExists(sub); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// dropRepoIfEmpty removes a repository that has no manifests and no blob
// links left, so it leaves the catalog.
func dropRepoIfEmpty(tx *bolt.Tx, name string) error {
	b := repoBucket(tx, name)
	if b == nil {
		return nil
	}
	if k, _ := b.Bucket(subManifests).Cursor().First(); k != nil {
		return nil
	}
	if k, _ := b.Bucket(subLinks).Cursor().First(); k != nil {
		return nil
	}
	return tx.Bucket(bucketRepos).DeleteBucket([]byte(name))
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

func getJSON(b *bolt.Bucket, key []byte, v any) bool {
	data := b.Get(key)
	if data == nil {
		return false
	}
	return json.Unmarshal(data, v) == nil
}

func putTime(b *bolt.Bucket, key []byte, t time.Time) error {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(t.UnixNano()))
	return b.Put(key, v[:])
}

func getTime(b *bolt.Bucket, key []byte) (time.Time, bool) {
	v := b.Get(key)
	if len(v) != 8 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))), true
}
