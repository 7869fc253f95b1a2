package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// The metadata layout has a version, kept in bucket format. Version 1,
// which has no format bucket, held each repository in a bucket of its own
// under repos, with sub-buckets m, t, b, r, p and c keyed by digests and
// tags as text, JSON in manifest and blob records.
//
// Open converts a version 1 meta.db before anything reads it: it writes
// the converted records, in order, to a new file metadata.db.new in
// transactions of at most upgradeBudget records, syncs it, links the old
// file as meta.db.v1, renames the new one metadata.db, then replaces
// meta.db with a text no bbolt opens (metafile.go). Written in order, the
// new file's pages are full, and it holds none of the old file's free
// pages (a bbolt file never shrinks). A crash at any point leaves one
// whole metadata file in use; a metadata.db.new left behind is discarded
// and the conversion starts again.
const (
	formatVersion = 2
	upgradeBudget = 20000
)

var (
	bucketFormat = []byte("format")
	keyVersion   = []byte("version")
	// keyFromTx is, in a converted file, the transaction id of the format
	// 1 file it was converted from: a later write to that file, by an
	// earlier release, moves it on.
	keyFromTx = []byte("from-tx")
	// The sub-buckets of a version 1 repository, and where their records
	// go.
	v1Subs = []struct {
		name []byte
		to   []byte
	}{
		{[]byte("m"), bucketManifests}, {[]byte("r"), bucketReferrers}, {[]byte("t"), bucketTags},
		{[]byte("c"), bucketChecks}, {[]byte("b"), bucketLinks}, {[]byte("p"), bucketPulls},
	}
)

// openFormat creates the buckets of a new file, or finds those of an
// existing one, and runs init in the same transaction.
func openFormat(c *committer, init func(*bolt.Tx) error) error {
	return c.tx(func(tx *bolt.Tx) error {
		if err := checkVersion(tx); err != nil {
			return err
		}
		fresh := tx.Bucket(bucketRepos) == nil
		if err := createBuckets(tx); err != nil {
			return err
		}
		if err := init(tx); err != nil {
			return err
		}
		if fresh {
			return setVersion(tx)
		}
		return nil
	})
}

// checkVersion fails if tx's file is of a format newer than this
// registry's, or holds metadata with no format record: one of format 1
// put in metaFile's place (an old backup restored under the new name),
// which read as format 2 would show no repository, and whose blobs GC
// would then delete as orphans.
func checkVersion(tx *bolt.Tx) error {
	if tx.Bucket(bucketFormat) == nil {
		if name, _ := tx.Cursor().First(); name != nil {
			return fmt.Errorf("%s holds metadata of format 1: move it to %s (after moving that aside), where the registry converts it at start", metaFile, legacyFile)
		}
		return nil
	}
	if v := version(tx); v > formatVersion {
		return fmt.Errorf("metadata format %d is newer than this registry's (%d): upgrade the registry", v, formatVersion)
	}
	return nil
}

func version(tx *bolt.Tx) uint64 {
	f := tx.Bucket(bucketFormat)
	if f == nil {
		return 1
	}
	v, _ := binary.Uvarint(f.Get(keyVersion))
	return v
}

func setVersion(tx *bolt.Tx) error {
	f, err := tx.CreateBucketIfNotExists(bucketFormat)
	if err != nil {
		return err
	}
	return f.Put(keyVersion, binary.AppendUvarint(nil, formatVersion))
}

// upgradeFile converts db, the format 1 file at legacy, into a new file
// at path, and keeps legacy as legacy.v1.
func upgradeFile(db *bolt.DB, legacy, path string) error {
	var v uint64
	db.View(func(tx *bolt.Tx) error { v = version(tx); return nil })
	if v >= formatVersion {
		return fmt.Errorf("%s holds metadata format %d, which this registry keeps in %s: rename it", legacy, v, metaFile)
	}
	newPath := path + ".new"
	if err := convertFile(db, newPath, upgradeBudget, nil); err != nil {
		os.Remove(newPath)
		return fmt.Errorf("convert %s to format %d: %w", legacy, formatVersion, err)
	}
	if err := keepV1(legacy); err != nil {
		os.Remove(newPath)
		return fmt.Errorf("keep a copy of %s before converting it: %w", legacy, err)
	}
	if err := os.Rename(newPath, path); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// keepV1 makes meta.db.v1 the file at path, as a hard link, or a copy
// where links are not supported.
func keepV1(path string) error {
	v1 := path + ".v1"
	os.Remove(v1)
	if os.Link(path, v1) == nil {
		return nil
	}
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(v1, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, src)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir syncs directory dir, so that the names in it survive a crash.
// It is a variable so that tests can see which directories are synced.
var syncDir = func(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// convertFile writes the records of version 1 file db, converted, to a
// new file at newPath, in transactions of about budget records.
// inBatch, if set, runs at the start of each transaction with its number.
func convertFile(db *bolt.DB, newPath string, budget int, inBatch func(int)) error {
	os.Remove(newPath)
	// Synced once, at the end: until it is renamed, the file is nothing.
	// Its free list is kept in the file as metadata.db's is.
	opts := metaOptions()
	opts.NoSync = true
	ndb, err := bolt.Open(newPath, 0o600, opts)
	if err != nil {
		return err
	}
	w := &convertWriter{db: ndb, budget: budget, inBatch: inBatch}
	err = db.View(func(tx *bolt.Tx) error { return w.convert(tx) })
	if err == nil {
		err = w.finish()
	} else if w.tx != nil {
		w.tx.Rollback()
	}
	if err == nil {
		err = ndb.Sync()
	}
	if cerr := ndb.Close(); err == nil {
		err = cerr
	}
	return err
}

// convertWriter writes a new file in transactions of about budget
// records.
type convertWriter struct {
	db      *bolt.DB
	tx      *bolt.Tx
	n       int // records in tx
	batch   int
	budget  int
	inBatch func(int)
	fromTx  uint64 // the format 1 file's transaction id
}

// bucket returns bucket name of the current transaction, beginning one if
// needed.
func (w *convertWriter) bucket(name []byte) (*bolt.Bucket, error) {
	if w.tx == nil {
		if w.inBatch != nil {
			w.inBatch(w.batch)
		}
		tx, err := w.db.Begin(true)
		if err != nil {
			return nil, err
		}
		w.tx = tx
		if err := createBuckets(tx); err != nil {
			return nil, err
		}
	}
	return w.tx.CreateBucketIfNotExists(name)
}

func (w *convertWriter) put(bucket, k, v []byte) error {
	b, err := w.bucket(bucket)
	if err != nil {
		return err
	}
	// Records come in key order, each past the last.
	b.FillPercent = fillAppend
	if err := b.Put(k, v); err != nil {
		return err
	}
	if w.n++; w.n >= w.budget {
		return w.commit()
	}
	return nil
}

func (w *convertWriter) commit() error {
	if w.tx == nil {
		return nil
	}
	err := w.tx.Commit()
	w.tx, w.n = nil, 0
	w.batch++
	return err
}

// finish writes the format version and commits.
func (w *convertWriter) finish() error {
	if _, err := w.bucket(bucketFormat); err != nil {
		return err
	}
	if err := setVersion(w.tx); err != nil {
		return err
	}
	if err := w.tx.Bucket(bucketFormat).Put(keyFromTx, binary.AppendUvarint(nil, w.fromTx)); err != nil {
		return err
	}
	return w.commit()
}

// convert writes every record of version 1 transaction tx.
func (w *convertWriter) convert(tx *bolt.Tx) error {
	w.fromTx = uint64(tx.ID())
	var n uint64
	repos, blobs := tx.Bucket(bucketRepos), tx.Bucket(bucketBlobs)
	if repos == nil || blobs == nil { // a file never initialised
		return nil
	}
	err := repos.ForEach(func(name, _ []byte) error {
		rb := repos.Bucket(name)
		// A repository with nothing left in it was still listed.
		if rb == nil || (emptyBucket(rb.Bucket([]byte("m"))) && emptyBucket(rb.Bucket([]byte("b")))) {
			return nil
		}
		n++
		id := appendRepoID(nil, n)
		if err := w.put(bucketRepos, name, id); err != nil {
			return err
		}
		for _, sub := range v1Subs {
			sb := rb.Bucket(sub.name)
			if sb == nil {
				continue
			}
			err := sb.ForEach(func(k, v []byte) error {
				nk, nv, err := upgradeRecord(id, sub.name, k, v)
				if err != nil {
					return err
				}
				return w.put(sub.to, nk, nv)
			})
			if err != nil {
				return fmt.Errorf("repository %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	b, err := w.bucket(bucketRepos)
	if err != nil {
		return err
	}
	if err := b.SetSequence(n); err != nil {
		return err
	}
	err = blobs.ForEach(func(k, v []byte) error {
		var rec struct {
			Size    int64  `json:"size"`
			Created int64  `json:"created"`
			Key     string `json:"key"`
		}
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("blob record %q: %w", k, err)
		}
		return w.put(bucketBlobs, digestKey(digest.Digest(k)), encodeBlobRecord(blobRecord(rec)))
	})
	if err != nil {
		return err
	}
	// The rest (upload sessions, blob locations, multipart uploads,
	// events, the audit record, passes, usage, robots…) is copied as it
	// is.
	return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		if bytes.Equal(name, bucketRepos) || bytes.Equal(name, bucketBlobs) {
			return nil
		}
		return w.copy(name, b)
	})
}

// copy writes the records of bucket name, from, unchanged, its sequence
// with them.
func (w *convertWriter) copy(name []byte, from *bolt.Bucket) error {
	nb, err := w.bucket(name)
	if err != nil {
		return err
	}
	if err := nb.SetSequence(from.Sequence()); err != nil {
		return err
	}
	return from.ForEach(func(k, v []byte) error {
		if v != nil {
			return w.put(name, k, v)
		}
		nb, err := w.bucket(name)
		if err != nil {
			return err
		}
		sub, err := nb.CreateBucketIfNotExists(k)
		if err != nil {
			return err
		}
		return copyBucket(sub, from.Bucket(k))
	})
}

func emptyBucket(b *bolt.Bucket) bool {
	if b == nil {
		return true
	}
	k, _ := b.Cursor().First()
	return k == nil
}

// copyBucket copies the records, nested buckets and sequence of from to
// to.
func copyBucket(to, from *bolt.Bucket) error {
	if err := to.SetSequence(from.Sequence()); err != nil {
		return err
	}
	return from.ForEach(func(k, v []byte) error {
		if v != nil {
			return to.Put(k, v)
		}
		nb, err := to.CreateBucketIfNotExists(k)
		if err != nil {
			return err
		}
		return copyBucket(nb, from.Bucket(k))
	})
}

// upgradeRecord returns the version 2 key and value of record k, v of
// version 1 sub-bucket sub of the repository now id.
func upgradeRecord(id, sub, k, v []byte) (nk, nv []byte, err error) {
	switch string(sub) {
	case "m":
		d := digest.Digest(k)
		m, err := upgradeManifest(d, v)
		return digestAt(id, d), encodeManifest(m), err
	case "r":
		subject, ref, ok := strings.Cut(string(k), " ")
		var desc ocispec.Descriptor
		if !ok {
			return nil, nil, fmt.Errorf("referrer %q: corrupt key", k)
		}
		if err := json.Unmarshal(v, &desc); err != nil {
			return nil, nil, fmt.Errorf("referrer %q: %w", k, err)
		}
		m := Manifest{MediaType: desc.MediaType, Size: desc.Size, ArtifactType: desc.ArtifactType, Annotations: desc.Annotations}
		return referrerKey(id, digest.Digest(subject), digest.Digest(ref)), encodeReferrer(m), nil
	case "t", "c":
		if len(v) < 8 {
			return nil, nil, fmt.Errorf("tag %q: corrupt record", k)
		}
		return key(id, k), appendDigest(bytes.Clone(v[:8]), digest.Digest(v[8:])), nil
	}
	if len(v) != 8 {
		return nil, nil, fmt.Errorf("%s record %q: corrupt", sub, k)
	}
	return digestAt(id, digest.Digest(k)), bytes.Clone(v), nil
}

// upgradeManifest decodes a version 1 manifest record: media type and
// JSON metadata, each behind its uvarint length, then the bytes.
func upgradeManifest(d digest.Digest, rec []byte) (Manifest, error) {
	mt, rest, ok := cutField(rec)
	if !ok {
		return Manifest{}, fmt.Errorf("manifest %s: corrupt record", d)
	}
	meta, content, ok := cutField(rest)
	if !ok {
		return Manifest{}, fmt.Errorf("manifest %s: corrupt record", d)
	}
	var v1 struct {
		Subject   digest.Digest   `json:"subject"`
		Blobs     []digest.Digest `json:"blobs"`
		Manifests []digest.Digest `json:"manifests"`
		Pushed    time.Time       `json:"pushed"`
	}
	if err := json.Unmarshal(meta, &v1); err != nil {
		return Manifest{}, fmt.Errorf("manifest %s: %w", d, err)
	}
	return Manifest{MediaType: string(mt), Content: content, Pushed: v1.Pushed, Subject: v1.Subject,
		Blobs: v1.Blobs, Manifests: v1.Manifests}, nil
}
