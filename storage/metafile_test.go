package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// requireRefused checks that bbolt, as every release knowing only format
// 1 calls it first, refuses meta.db under root, read-write and read-only,
// and leaves it as it was.
func requireRefused(t *testing.T, root string) {
	t.Helper()
	path := filepath.Join(root, legacyFile)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, readOnly := range []bool{false, true} {
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: readOnly})
		if err == nil {
			db.Close()
			t.Fatalf("bolt.Open(meta.db, ReadOnly %t) = nil, want an error", readOnly)
		}
		if !errors.Is(err, berrors.ErrInvalid) {
			t.Errorf("bolt.Open(meta.db, ReadOnly %t) = %v, want %v", readOnly, err, berrors.ErrInvalid)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Errorf("meta.db after bolt.Open = %q, want it unchanged", after)
	}
}

// TestLegacyRefusedNew: a new store writes its metadata to metadata.db,
// and in meta.db a text that bbolt refuses, saying where the metadata is.
func TestLegacyRefusedNew(t *testing.T) {
	root := t.TempDir()
	s, err := Open(t.Context(), Config{Driver: "filesystem", Root: root, Release: "nora v9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	requireRefused(t, root)
	text, _ := os.ReadFile(filepath.Join(root, legacyFile))
	for _, want := range []string{stubFirstLine, "Origin:     a new store", "Written by: nora v9.9.9", "metadata.db", "invalid database"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("meta.db = %q, want it to say %q", text, want)
		}
	}
}

// TestLegacyRefusedConverted: once a format 1 meta.db is converted,
// meta.db is a text bbolt refuses, which tells how to go back, and the
// store opens again from metadata.db.
func TestLegacyRefusedConverted(t *testing.T) {
	root := fixtureRoot(t)
	want := snapshotV1(t, filepath.Join(root, legacyFile))
	s := openAt(t, root)
	s.Close()
	requireRefused(t, root)
	text, _ := os.ReadFile(filepath.Join(root, legacyFile))
	if !strings.Contains(string(text), "mv meta.db.v1 meta.db && mv metadata.db metadata.db.after") {
		t.Errorf("meta.db = %q, want it to say how to go back", text)
	}
	s = openAt(t, root)
	defer s.Close()
	if got := snapshot(t, s); !slices.Equal(got, want) {
		t.Errorf("reopened after the conversion:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestOpenMetaFileStates: Open from each state a crash, an operator or an
// earlier release can leave: it finishes what a conversion began, and
// refuses where its choice could lose metadata.
func TestOpenMetaFileStates(t *testing.T) {
	converted := func(t *testing.T) string { // a converted store, with one blob
		root := fixtureRoot(t)
		s := openAt(t, root)
		pushBlob(t, s, "after/conversion", []byte("pushed after the conversion"))
		s.Close()
		return root
	}
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T) string
		wantErr string // "" for an Open that works and keeps the blob pushed
	}{
		{"text lost", func(t *testing.T) string {
			root := converted(t)
			os.Remove(filepath.Join(root, legacyFile))
			return root
		}, ""},
		{"crash before the text replaced meta.db", func(t *testing.T) string {
			root := converted(t)
			hardLink(t, filepath.Join(root, legacyFile+".v1"), filepath.Join(root, legacyFile))
			return root
		}, ""},
		{"crash before the text replaced meta.db, no hard links", func(t *testing.T) string {
			root := converted(t)
			copyFile(t, filepath.Join(root, legacyFile+".v1"), filepath.Join(root, legacyFile))
			return root
		}, ""},
		{"metadata.db lost", func(t *testing.T) string {
			root := converted(t)
			os.Remove(filepath.Join(root, metaFile))
			return root
		}, "metadata.db, which is missing"},
		{"crash before the text, then an earlier release wrote meta.db", func(t *testing.T) string {
			root := converted(t)
			legacy := filepath.Join(root, legacyFile)
			hardLink(t, legacy+".v1", legacy)
			db, err := bolt.Open(legacy, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			d := digest.FromString("pushed by an earlier release")
			if err := db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("blobs")).Put([]byte(d), []byte(`{"size":28,"created":1}`))
			}); err != nil {
				t.Fatal(err)
			}
			return root
		}, "was written after its conversion"},
		{"a format 1 backup restored as metadata.db", func(t *testing.T) string {
			root := fixtureRoot(t)
			if err := os.Rename(filepath.Join(root, legacyFile), filepath.Join(root, metaFile)); err != nil {
				t.Fatal(err)
			}
			return root
		}, "metadata.db holds metadata of format 1: move it to meta.db"},
		{"meta.db.v1 put back, metadata.db kept", func(t *testing.T) string {
			root := converted(t)
			os.Rename(filepath.Join(root, legacyFile+".v1"), filepath.Join(root, legacyFile))
			return root
		}, "is a metadata file of format 1 and metadata.db exists too"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := tc.prepare(t)
			before := dirNames(t, root)
			s, err := Open(t.Context(), Config{Driver: "filesystem", Root: root})
			if tc.wantErr != "" {
				if err == nil {
					s.Close()
					t.Fatalf("Open = nil, want an error saying %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Open = %v, want it to say %q", err, tc.wantErr)
				}
				if after := dirNames(t, root); !slices.Equal(after, before) {
					t.Errorf("files after a refused Open = %q, want %q", after, before)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open = %v", err)
			}
			defer s.Close()
			if repos, _, _ := s.Repositories(t.Context(), "after/", -1); !slices.Contains(repos, "after/conversion") {
				t.Errorf("Repositories = %q, want the one pushed after the conversion", repos)
			}
			requireRefused(t, root)
		})
	}
}

// TestConvertedMeanwhile: a process that waited for the lock of a format
// 1 meta.db while another converted it finds metadata.db once it holds
// the lock, and converts nothing again.
func TestConvertedMeanwhile(t *testing.T) {
	root := fixtureRoot(t)
	done := t.TempDir()
	s := openAt(t, done) // stands for the other process's metadata.db
	s.Close()
	copyFile(t, filepath.Join(done, metaFile), filepath.Join(root, metaFile))
	before := dirNames(t, root)
	err := convertLegacy(root, "", func(path string) (*bolt.DB, error) { return bolt.Open(path, 0o600, nil) })
	if !errors.Is(err, errConvertedMeanwhile) {
		t.Errorf("convertLegacy with metadata.db there = %v, want errConvertedMeanwhile", err)
	}
	if after := dirNames(t, root); !slices.Equal(after, before) {
		t.Errorf("files after = %q, want %q", after, before)
	}
}

// TestOpenEmptyLegacy: a meta.db of 0 bytes (a crash as an earlier
// release created it) holds nothing: the store is new.
func TestOpenEmptyLegacy(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, legacyFile), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openAt(t, root)
	s.Close()
	requireRefused(t, root)
}

// TestOpenExistingEitherFile: a store exists when its data directory holds
// metadata.db or a meta.db to convert.
func TestOpenExistingEitherFile(t *testing.T) {
	if _, err := OpenExisting(t.Context(), Config{Driver: "filesystem", Root: t.TempDir()}); !errors.Is(err, ErrNoStore) {
		t.Errorf("OpenExisting(empty directory) = %v, want ErrNoStore", err)
	}
	root := fixtureRoot(t)
	s, err := OpenExisting(t.Context(), Config{Driver: "filesystem", Root: root})
	if err != nil {
		t.Fatalf("OpenExisting(format 1 meta.db) = %v", err)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(root, metaFile)); err != nil {
		t.Errorf("OpenExisting(format 1 meta.db) left no metadata.db: %v", err)
	}
}

func hardLink(t *testing.T, from, to string) {
	t.Helper()
	os.Remove(to)
	if err := os.Link(from, to); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// dirNames lists the files of dir, each with its size.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		fi, _ := e.Info()
		out = append(out, fmt.Sprintf("%s %d", e.Name(), fi.Size()))
	}
	return out
}
