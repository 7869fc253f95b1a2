package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// The metadata layout in bbolt. Top-level buckets:
//
//	blobs     digest → blobRecord: every verified blob in the blob store
//	uploads   id → uploadRecord: open upload sessions
//	uploadcounts  "t" and "c " + client → open sessions, in total and per client
//	repos     name → repository id
//	manifests id + digest → manifest record (metadata, then the manifest bytes)
//	tags      id + tag → push time and digest (encodeTag)
//	links     id + digest → link time: blobs the repository may read
//	referrers id + subject digest + referrer digest → referrer record
//	pulls     id + digest → last pull time of a manifest
//	tagchecks id + tag → when a cached tag last matched its upstream (tagcheck.go)
//	format    "version" → the layout's version (upgrade.go)
//
// Digests are binary and records are binary (metacodec.go). Repository
// records share buckets, keyed by a short id rather than held in a bucket
// per repository: a small repository then costs a few hundred bytes, not
// a page of its own. Ids are never reused; a new repository takes the
// next, so its records are appended after every other's.
var (
	bucketBlobs     = []byte("blobs")
	bucketUploads   = []byte("uploads")
	bucketRepos     = []byte("repos")
	bucketManifests = []byte("manifests")
	bucketTags      = []byte("tags")
	bucketLinks     = []byte("links")
	bucketReferrers = []byte("referrers")
	bucketPulls     = []byte("pulls")
	bucketChecks    = []byte("tagchecks")
)

var metaBuckets = [][]byte{bucketBlobs, bucketUploads, bucketRepos, bucketManifests, bucketTags,
	bucketLinks, bucketReferrers, bucketPulls, bucketChecks}

func createBuckets(tx *bolt.Tx) error {
	for _, name := range metaBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// appendRepoID appends the key prefix of repository id n: big-endian in
// 1 to 4 bytes, the length in the high bits of the first (0, 10, 110,
// 1110), or 0xf0 and 8 bytes. Prefixes sort as the ids do, and none is the
// start of another, so one repository's keys are exactly those that start
// with its prefix.
func appendRepoID(b []byte, n uint64) []byte {
	switch {
	case n < 1<<7:
		return append(b, byte(n))
	case n < 1<<14:
		return append(b, 0x80|byte(n>>8), byte(n))
	case n < 1<<21:
		return append(b, 0xc0|byte(n>>16), byte(n>>8), byte(n))
	case n < 1<<28:
		return append(b, 0xe0|byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xf0), n)
}

// repoID returns the key prefix of repository name, or nil if it holds
// nothing. The prefix is a copy, valid after the transaction.
func repoID(tx *bolt.Tx, name string) []byte {
	return bytes.Clone(tx.Bucket(bucketRepos).Get([]byte(name)))
}

// createRepo returns the key prefix of repository name, creating the
// repository if needed.
func createRepo(tx *bolt.Tx, name string) ([]byte, error) {
	repos := tx.Bucket(bucketRepos)
	if id := repos.Get([]byte(name)); id != nil {
		return bytes.Clone(id), nil
	}
	n, err := repos.NextSequence()
	if err != nil {
		return nil, err
	}
	id := appendRepoID(nil, n)
	return id, repos.Put([]byte(name), id)
}

// Fill factors of a page bbolt splits. Keys landing anywhere in a bucket
// fill pages best split in halves; keys at a bucket's end, as the records
// of its newest repositories are, would leave every page half empty
// behind them. fillRandom differs from bbolt's default only to mark a
// bucket that took a key away from its end in this transaction.
const (
	fillRandom = 0.499
	fillAppend = 0.95
	// nearEnd is how far from a bucket's end a key still counts as at its
	// end: concurrent pushes to new repositories arrive a little out of
	// order.
	nearEnd = 32
)

// put stores k, v in b, splitting b's pages full when every key put in b
// in this transaction went to its end.
func put(b *bolt.Bucket, k, v []byte) error {
	if b.FillPercent != fillRandom {
		b.FillPercent = fillRandom
		// k goes past one of the last nearEnd keys exactly when it goes
		// past the key nearEnd from the end.
		c := b.Cursor()
		last, _ := c.Last()
		for i := 0; i < nearEnd && last != nil && bytes.Compare(k, last) <= 0; i++ {
			last, _ = c.Prev()
		}
		if bytes.Compare(k, last) > 0 {
			b.FillPercent = fillAppend
		}
	}
	return b.Put(k, v)
}

// key returns id followed by parts.
func key(id []byte, parts ...[]byte) []byte {
	n := len(id)
	for _, p := range parts {
		n += len(p)
	}
	k := append(make([]byte, 0, n), id...)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

// digestAt returns the key of digest d in a repository's records.
func digestAt(id []byte, d digest.Digest) []byte { return appendDigest(bytes.Clone(id), d) }

// hasPrefix reports whether bucket name holds a key starting with prefix.
func hasPrefix(tx *bolt.Tx, name, prefix []byte) bool {
	k, _ := tx.Bucket(name).Cursor().Seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix)
}

// dropRepoIfEmpty removes a repository that has no manifests and no blob
// links left, so it leaves the catalog.
func dropRepoIfEmpty(tx *bolt.Tx, name string, id []byte) error {
	if hasPrefix(tx, bucketManifests, id) || hasPrefix(tx, bucketLinks, id) {
		return nil
	}
	return tx.Bucket(bucketRepos).Delete([]byte(name))
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
	return put(b, key, appendTime(make([]byte, 0, 8), t))
}

func getTime(b *bolt.Bucket, key []byte) (time.Time, bool) {
	v := b.Get(key)
	return decodeTime(v), len(v) == 8
}
