package storage

import (
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// fixtureRoot returns a data directory holding testdata/meta-v1.db.gz, a
// version 1 metadata file written by TestWriteFixture as of commit
// 26e02aa (before the format had a version).
func fixtureRoot(t *testing.T) string {
	t.Helper()
	f, err := os.Open("testdata/meta-v1.db.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	out, err := os.Create(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := out.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestUpgradeFixture: every repository, tag, manifest, link, referrer,
// pull time, tag check and blob record of a version 1 file reads the same
// once Open has converted it, and the store goes on working.
func TestUpgradeFixture(t *testing.T) {
	root := fixtureRoot(t)
	want := snapshotV1(t, filepath.Join(root, "meta.db"))
	for _, line := range []string{
		"repo uploads/only",
		"tag library/alpine latest ",
		"check team/app v1 sha256:",
		"pull library/alpine ",
		`referrer library/alpine sha256:`,
		"blob sha512:",
	} {
		if !slices.ContainsFunc(want, func(l string) bool { return strings.HasPrefix(l, line) }) {
			t.Fatalf("fixture has no %q line: %q", line, want)
		}
	}
	s := openAt(t, root)
	defer s.Close()
	if got := snapshot(t, s); !slices.Equal(got, want) {
		t.Errorf("after the upgrade:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := snapshotV1(t, filepath.Join(root, "meta.db.v1")); !slices.Equal(got, want) {
		t.Errorf("meta.db.v1 holds:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var v uint64
	s.metaDB().View(func(tx *bolt.Tx) error { v = version(tx); return nil })
	if v != formatVersion {
		t.Errorf("format version = %d, want %d", v, formatVersion)
	}
	// A new repository takes an id of its own; old ones still change.
	layer := pushBlob(t, s, "new/repo", []byte("new layer"))
	putManifest(t, s, "new/repo", testManifest("new", layer), "v1")
	putManifest(t, s, "library/alpine", testManifest("more", layer2(t, s)), "more")
	if err := s.DeleteTag(t.Context(), "library/alpine", "latest"); err != nil {
		t.Fatal(err)
	}
	if tags, _, _ := s.Tags(t.Context(), "library/alpine", "", -1); !slices.Equal(tags, []string{"3.20", "more", "multi"}) {
		t.Errorf("Tags(library/alpine) = %q", tags)
	}
	if tags, _, _ := s.Tags(t.Context(), "new/repo", "", -1); !slices.Equal(tags, []string{"v1"}) {
		t.Errorf("Tags(new/repo) = %q, want [v1]", tags)
	}
}

func layer2(t *testing.T, s *Store) digest.Digest {
	return pushBlob(t, s, "library/alpine", []byte("another alpine layer"))
}

// TestUpgradeKilled: a process killed in the middle of the conversion
// leaves the old file whole, and the next Open converts it.
func TestUpgradeKilled(t *testing.T) {
	if root := os.Getenv("NORA_UPGRADE_KILL_ROOT"); root != "" {
		upgradeThenDie(root)
		return
	}
	root := fixtureRoot(t)
	path := filepath.Join(root, "meta.db")
	want := snapshotV1(t, path)
	cmd := exec.Command(os.Args[0], "-test.run=^TestUpgradeKilled$")
	cmd.Env = append(os.Environ(), "NORA_UPGRADE_KILL_ROOT="+root)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("converting process = %v (%s), want it killed", err, out)
	}
	newPath := filepath.Join(root, metaFile+".new")
	if fi, err := os.Stat(newPath); err != nil || fi.Size() == 0 {
		t.Fatalf("killed conversion left no metadata.db.new (%v), want a partial one", err)
	}
	if got := snapshotV1(t, path); !slices.Equal(got, want) {
		t.Fatalf("meta.db after a killed conversion holds:\n%s\nwant it untouched", strings.Join(got, "\n"))
	}
	s := openAt(t, root)
	defer s.Close()
	if got := snapshot(t, s); !slices.Equal(got, want) {
		t.Errorf("after a killed upgrade and another Open:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := snapshotV1(t, path+".v1"); !slices.Equal(got, want) {
		t.Errorf("meta.db.v1 holds:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := os.Stat(newPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("metadata.db.new after the upgrade: %v, want none", err)
	}
}

// upgradeThenDie converts the metadata at root three records per
// transaction and kills its own process as the fourth begins.
func upgradeThenDie(root string) {
	path := filepath.Join(root, "meta.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		panic(err)
	}
	convertFile(db, filepath.Join(root, metaFile+".new"), 3, func(n int) {
		if n == 3 {
			self, _ := os.FindProcess(os.Getpid())
			self.Kill() // SIGKILL
			time.Sleep(time.Minute)
		}
	})
	panic("the conversion finished before it was killed")
}

// snapshot describes every record of s, one sorted line each, through the
// store's own API.
func snapshot(t *testing.T, s *Store) []string {
	ctx := t.Context()
	var out []string
	names, _, err := s.Repositories(ctx, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		out = append(out, "repo "+name)
		r, err := s.Repository(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range r.Tags {
			out = append(out, fmt.Sprintf("tag %s %s %s %d", name, tag.Name, tag.Digest, tag.Pushed.UnixNano()))
			if at, ok := s.TagChecked(ctx, name, tag.Name); ok {
				out = append(out, fmt.Sprintf("check %s %s %s %d", name, tag.Name, tag.Digest, at.UnixNano()))
			}
		}
		for _, m := range r.Manifests {
			got, err := s.GetManifest(ctx, name, string(m.Digest))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, manifestLine(name, m.Digest, got.MediaType, m.Pushed, m.Subject, m.Blobs, m.Manifests, got.Content))
			if at, ok := s.LastPulled(ctx, name, m.Digest); ok {
				out = append(out, fmt.Sprintf("pull %s %s %d", name, m.Digest, at.UnixNano()))
			}
			refs, err := s.Referrers(ctx, name, m.Digest)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range refs {
				out = append(out, referrerLine(name, m.Digest, d))
			}
		}
		for _, l := range r.Links {
			out = append(out, fmt.Sprintf("link %s %s %d", name, l.Digest, l.Linked.UnixNano()))
		}
	}
	s.ScanBlobs(ctx, func(b GCBlob) error {
		out = append(out, fmt.Sprintf("blob %s %d %d", b.Digest, b.Size, b.Created.UnixNano()))
		return nil
	})
	slices.Sort(out)
	return out
}

func manifestLine(repo string, d digest.Digest, mt string, pushed time.Time, subject digest.Digest, blobs, manifests []digest.Digest, content []byte) string {
	return fmt.Sprintf("manifest %s %s %s %d subject=%s blobs=%s manifests=%s %q", repo, d, mt, pushed.UnixNano(), subject, blobs, manifests, content)
}

func referrerLine(repo string, subject digest.Digest, d ocispec.Descriptor) string {
	return fmt.Sprintf("referrer %s %s %s %s %d %s %v", repo, subject, d.Digest, d.MediaType, d.Size, d.ArtifactType, d.Annotations)
}

// snapshotV1 describes every record of the version 1 file at path, as
// snapshot does, reading the file as the version 1 code wrote it.
func snapshotV1(t *testing.T, path string) []string {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []string
	at := func(v []byte) int64 { return int64(binary.BigEndian.Uint64(v)) }
	err = db.View(func(tx *bolt.Tx) error {
		repos := tx.Bucket(bucketRepos)
		repos.ForEach(func(name, _ []byte) error {
			rb := repos.Bucket(name)
			out = append(out, "repo "+string(name))
			rb.Bucket([]byte("t")).ForEach(func(k, v []byte) error {
				out = append(out, fmt.Sprintf("tag %s %s %s %d", name, k, v[8:], at(v)))
				return nil
			})
			if cb := rb.Bucket([]byte("c")); cb != nil {
				cb.ForEach(func(k, v []byte) error {
					if cur := rb.Bucket([]byte("t")).Get(k); cur != nil && string(cur[8:]) == string(v[8:]) {
						out = append(out, fmt.Sprintf("check %s %s %s %d", name, k, v[8:], at(v)))
					}
					return nil
				})
			}
			rb.Bucket([]byte("m")).ForEach(func(k, v []byte) error {
				m, err := upgradeManifest(digest.Digest(k), v)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, manifestLine(string(name), digest.Digest(k), m.MediaType, m.Pushed, m.Subject, m.Blobs, m.Manifests, m.Content))
				return nil
			})
			rb.Bucket([]byte("p")).ForEach(func(k, v []byte) error {
				out = append(out, fmt.Sprintf("pull %s %s %d", name, k, at(v)))
				return nil
			})
			rb.Bucket([]byte("r")).ForEach(func(k, v []byte) error {
				var d ocispec.Descriptor
				json.Unmarshal(v, &d)
				subject, _, _ := strings.Cut(string(k), " ")
				out = append(out, referrerLine(string(name), digest.Digest(subject), d))
				return nil
			})
			return rb.Bucket([]byte("b")).ForEach(func(k, v []byte) error {
				out = append(out, fmt.Sprintf("link %s %s %d", name, k, at(v)))
				return nil
			})
		})
		return tx.Bucket(bucketBlobs).ForEach(func(k, v []byte) error {
			var rec struct{ Size, Created int64 }
			json.Unmarshal(v, &rec)
			out = append(out, fmt.Sprintf("blob %s %d %d", k, rec.Size, rec.Created))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestUpgradeCopiesBuckets: the conversion keeps a blob's location, and
// copies every bucket it does not restructure (here passes, blob
// locations, multipart uploads, usage and the fixture's own) record for
// record with its sequence; the new file keeps its free list.
func TestUpgradeCopiesBuckets(t *testing.T) {
	root := fixtureRoot(t)
	path := filepath.Join(root, "meta.db")
	located := digest.FromString("stored where its upload wrote it")
	const key = "uploads/0123456789abcdef0123456789abcdef"
	pass, _ := json.Marshal(Pass{Kind: "gc", By: "cli", Started: time.Unix(1700000000, 0).UTC(), Manifests: 2})
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		rec := fmt.Sprintf(`{"size":33,"created":5,"key":%q}`, key)
		if err := tx.Bucket(bucketBlobs).Put([]byte(located), []byte(rec)); err != nil {
			return err
		}
		for name, kv := range map[string][2]string{
			"blobkeys":  {key, string(located)},
			"passes":    {string(seqKey(7)), string(pass)},
			"multipart": {"upload-id", "blobs/some/key"},
			"usage":     {"2026-01-02", `{"date":"2026-01-02","bytes":1}`},
		} {
			b, err := tx.CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return err
			}
			if err := b.SetSequence(7); err != nil {
				return err
			}
			if err := b.Put([]byte(kv[0]), []byte(kv[1])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Opening a file without one writes it; the conversion must not
	// leave that work, a read of every page, to the first open.
	converted := filepath.Join(t.TempDir(), metaFile)
	if err := convertFile(db, converted, upgradeBudget, nil); err != nil {
		t.Fatalf("convertFile = %v", err)
	}
	if !hasFreelist(t, converted) {
		t.Error("converted file has no free list")
	}
	db.Close()

	s := openAt(t, root)
	var loc string
	s.metaDB().View(func(tx *bolt.Tx) error { loc = blobLocation(tx, located); return nil })
	if loc != key {
		t.Errorf("blobLocation(%s) after the upgrade = %q, want %q", located, loc, key)
	}
	if got, err := s.ListPasses(t.Context()); err != nil || len(got) != 1 || got[0].Kind != "gc" || got[0].Manifests != 2 {
		t.Errorf("ListPasses() after the upgrade = %+v, %v, want the one recorded", got, err)
	}
	s.Close()

	old, now := bucketDump(t, path+".v1"), bucketDump(t, filepath.Join(root, metaFile))
	for name, want := range old {
		if name == string(bucketRepos) || name == string(bucketBlobs) {
			continue
		}
		if got := now[name]; !slices.Equal(got, want) {
			t.Errorf("bucket %s after the upgrade:\n%s\nwant:\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	for _, name := range []string{"blobkeys", "passes", "multipart", "usage", "uploads", "uploadcounts"} {
		if _, ok := old[name]; !ok {
			t.Errorf("the old file has no bucket %s to copy", name)
		}
	}
}

// bucketDump describes the records and sequence of every top-level
// bucket of the file at path.
func bucketDump(t *testing.T, path string) map[string][]string {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string][]string{}
	db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			lines := []string{fmt.Sprintf("sequence %d", b.Sequence())}
			b.ForEach(func(k, v []byte) error {
				lines = append(lines, fmt.Sprintf("%q %q", k, v))
				return nil
			})
			out[string(name)] = lines
			return nil
		})
	})
	return out
}

// hasFreelist reports whether the file at path has a free list written
// in it, as its newest meta page says.
func hasFreelist(t *testing.T, path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A meta page: a 16-byte page header, then magic, version, page size
	// and flags (4 bytes each), the root bucket (16), the free list's
	// page id and the page count (8 each), and the transaction id.
	const meta = 16
	pageSize := int(binary.LittleEndian.Uint32(data[meta+8:]))
	freelist := func(off int) (uint64, uint64) {
		return binary.LittleEndian.Uint64(data[off+meta+32:]), binary.LittleEndian.Uint64(data[off+meta+48:])
	}
	f0, tx0 := freelist(0)
	f1, tx1 := freelist(pageSize)
	if tx1 > tx0 {
		f0 = f1
	}
	return f0 != ^uint64(0)
}
