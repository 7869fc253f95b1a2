package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
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
// tags as text, JSON in manifest and blob records. Open keeps a copy of a
// version 1 file in meta.db.v1, then converts it in place before anything
// else reads it, in transactions
// of at most upgradeBudget records: a repository whose records are all
// moved leaves repos as a bucket and comes back as a name and id, and
// blob records move from text keys to binary ones. Each transaction
// leaves a file the next Open converts further, so a crash at any point
// loses nothing and the conversion resumes. The version is written last.
const (
	formatVersion = 2
	upgradeBudget = 20000
)

var (
	bucketFormat = []byte("format")
	keyVersion   = []byte("version")
	// A version 1 repository's id, while its records are being moved.
	keyUpgradeID = []byte("id")
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
// existing one, runs init in the same transaction, and converts a file of
// an earlier version, after keeping a copy of it (backupV1).
func openFormat(c *committer, init func(*bolt.Tx) error) error {
	var old, untouched bool
	err := c.db.View(func(tx *bolt.Tx) error {
		if v := version(tx); v > formatVersion {
			return fmt.Errorf("metadata format %d is newer than this registry's (%d): upgrade the registry", v, formatVersion)
		}
		old = tx.Bucket(bucketRepos) != nil && version(tx) < formatVersion
		untouched = tx.Bucket(bucketManifests) == nil
		return nil
	})
	if err != nil {
		return err
	}
	if old && untouched {
		if err := backupV1(c.db); err != nil {
			return fmt.Errorf("copy the metadata before converting it to format %d: %w", formatVersion, err)
		}
	}
	err = c.tx(func(tx *bolt.Tx) error {
		if err := createBuckets(tx); err != nil {
			return err
		}
		if err := init(tx); err != nil {
			return err
		}
		if !old {
			return setVersion(tx)
		}
		return nil
	})
	if err != nil || !old {
		return err
	}
	return upgrade(c, upgradeBudget, nil)
}

// backupV1 copies a version 1 file, about to be converted, to
// meta.db.v1 next to it, so that an older release can be restored. The
// copy is written whole and synced before it takes its name.
func backupV1(db *bolt.DB) error {
	path := db.Path() + ".v1"
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = db.View(func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(f)
		return err
	})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		dir.Sync()
		dir.Close()
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

// upgrade converts a version 1 file in transactions of about budget
// records. inBatch, if set, runs inside each transaction with its number.
func upgrade(c *committer, budget int, inBatch func(int)) error {
	var names [][]byte
	err := c.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRepos).ForEach(func(k, v []byte) error {
			if v == nil { // a bucket: not converted yet
				names = append(names, bytes.Clone(k))
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for batch := 0; ; batch++ {
		done := false
		err := c.tx(func(tx *bolt.Tx) error {
			if inBatch != nil {
				inBatch(batch)
			}
			left := budget
			for len(names) > 0 && left > 0 {
				n, finished, err := upgradeRepo(tx, names[0], left)
				if err != nil {
					return fmt.Errorf("upgrade repository %s: %w", names[0], err)
				}
				left -= n
				if !finished {
					break
				}
				names = names[1:]
			}
			if left > 0 {
				n, err := upgradeBlobs(tx, left)
				if err != nil {
					return err
				}
				left -= n
			}
			if left > 0 {
				done = true
				return setVersion(tx)
			}
			return nil
		})
		if err != nil || done {
			return err
		}
	}
}

// upgradeRepo moves up to budget records of version 1 repository name
// and returns how many it moved and whether the repository is done.
func upgradeRepo(tx *bolt.Tx, name []byte, budget int) (int, bool, error) {
	repos := tx.Bucket(bucketRepos)
	rb := repos.Bucket(name)
	if rb == nil {
		return 0, true, nil
	}
	id := bytes.Clone(rb.Get(keyUpgradeID))
	if id == nil {
		n, err := repos.NextSequence()
		if err != nil {
			return 0, false, err
		}
		id = appendRepoID(nil, n)
		if err := rb.Put(keyUpgradeID, id); err != nil {
			return 0, false, err
		}
	}
	moved := 0
	for _, sub := range v1Subs {
		sb := rb.Bucket(sub.name)
		if sb == nil {
			continue
		}
		var keys [][]byte
		c := sb.Cursor()
		for k, v := c.First(); k != nil && moved < budget; k, v = c.Next() {
			nk, nv, err := upgradeRecord(id, sub.name, k, v)
			if err != nil {
				return moved, false, err
			}
			if err := put(tx.Bucket(sub.to), nk, nv); err != nil {
				return moved, false, err
			}
			keys = append(keys, bytes.Clone(k))
			moved++
		}
		for _, k := range keys {
			if err := sb.Delete(k); err != nil {
				return moved, false, err
			}
		}
		if k, _ := sb.Cursor().First(); k != nil {
			return moved, false, nil
		}
		if err := rb.DeleteBucket(sub.name); err != nil {
			return moved, false, err
		}
	}
	if err := repos.DeleteBucket(name); err != nil {
		return moved, false, err
	}
	// A version 1 repository with nothing left in it was still listed.
	if !hasPrefix(tx, bucketManifests, id) && !hasPrefix(tx, bucketLinks, id) {
		return moved + 1, true, nil
	}
	return moved + 1, true, repos.Put(name, id)
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

// upgradeBlobs moves up to budget blob records from text keys and JSON
// values to binary ones, and returns how many it moved. Binary keys start
// with an algorithm code below 4, text keys with a letter.
func upgradeBlobs(tx *bolt.Tx, budget int) (int, error) {
	blobs := tx.Bucket(bucketBlobs)
	var keys, vals [][]byte
	c := blobs.Cursor()
	for k, v := c.Seek([]byte{4}); k != nil && len(keys) < budget; k, v = c.Next() {
		var rec struct {
			Size    int64 `json:"size"`
			Created int64 `json:"created"`
		}
		if err := json.Unmarshal(v, &rec); err != nil {
			return 0, fmt.Errorf("upgrade blob record %q: %w", k, err)
		}
		keys = append(keys, bytes.Clone(k))
		vals = append(vals, encodeBlobRecord(blobRecord{Size: rec.Size, Created: rec.Created}))
	}
	// Each key goes past those converted before it.
	blobs.FillPercent = fillAppend
	for i, k := range keys {
		if err := blobs.Delete(k); err != nil {
			return 0, err
		}
		if err := blobs.Put(digestKey(digest.Digest(k)), vals[i]); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}
