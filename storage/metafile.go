package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The metadata of format 2 lives in metaFile. legacyFile, the metadata
// file of format 1, then holds a short text (stubText) that is no bbolt
// file: every release that knows only format 1 opens legacyFile with
// bbolt first, and bbolt refuses it ("invalid database"), so such a
// release never runs on a store it cannot read. Given an empty or
// converted file instead, it would see no repository, and its GC would
// delete every blob as an orphan. bbolt initialises a file of 0 bytes
// only; the text is never empty.
const (
	metaFile   = "metadata.db"
	legacyFile = "meta.db"
	// stubFirstLine starts the text left in legacyFile.
	stubFirstLine = "nora: this file is not a database."
)

// openMetaFile opens the metadata file of data directory root, with open,
// first converting a format 1 legacyFile into metaFile, and leaves the
// text in legacyFile. release names the running release in that text.
func openMetaFile(root, release string, open func(path string) (*bolt.DB, error)) (*bolt.DB, error) {
	for {
		db, err := openMetaOnce(root, release, open)
		if !errors.Is(err, errConvertedMeanwhile) {
			return db, err
		}
	}
}

// errConvertedMeanwhile means another process converted legacyFile while
// this one waited for its lock: metaFile exists now.
var errConvertedMeanwhile = errors.New("converted by another process")

func openMetaOnce(root, release string, open func(path string) (*bolt.DB, error)) (*bolt.DB, error) {
	path, legacy := filepath.Join(root, metaFile), filepath.Join(root, legacyFile)
	_, err := os.Stat(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	exists := err == nil
	kind, err := legacyKind(legacy)
	if err != nil {
		return nil, err
	}
	switch {
	case exists && kind == legacyStub:
	case exists:
		if err := finishLegacy(root, release, kind, open); err != nil {
			return nil, err
		}
	case kind == legacyStub:
		return nil, fmt.Errorf("%s says the metadata is in %s, which is missing: restore it from a backup", legacy, path)
	case kind == legacyDB:
		if err := convertLegacy(root, release, open); err != nil {
			return nil, err
		}
	default: // a new store: the text follows its file
		db, err := open(path)
		if err != nil {
			return nil, err
		}
		if err := writeStub(root, release, false); err != nil {
			db.Close()
			return nil, err
		}
		return db, nil
	}
	return open(path)
}

type legacyState int

const (
	legacyNone legacyState = iota // missing, or empty
	legacyStub                    // the text
	legacyDB                      // anything else, for bbolt to judge
)

// legacyKind tells what the file at path holds.
func legacyKind(path string) (legacyState, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return legacyNone, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	head := make([]byte, len(stubFirstLine))
	n, err := io.ReadFull(f, head)
	switch {
	case n == 0 && err == io.EOF:
		return legacyNone, nil
	case bytes.Equal(head[:n], []byte(stubFirstLine)):
		return legacyStub, nil
	case err != nil && err != io.ErrUnexpectedEOF:
		return 0, err
	}
	return legacyDB, nil
}

// finishLegacy writes the text in legacyFile beside an existing metaFile,
// where legacyFile of kind is missing, or is the format 1 file a
// conversion kept (a crash came before the text replaced it), held with
// open meanwhile. Any other format 1 file was put there since, by hand:
// which file holds the newer metadata is for the operator to say.
func finishLegacy(root, release string, kind legacyState, open func(path string) (*bolt.DB, error)) error {
	legacy := filepath.Join(root, legacyFile)
	v1 := legacy + ".v1"
	// metaFile is checked first: the text must not name a file this
	// release would refuse.
	from, err := convertedFrom(filepath.Join(root, metaFile), open)
	if err != nil {
		return err
	}
	if kind == legacyDB {
		// Compared first: opening may write to it (a free list).
		if !sameFile(legacy, v1) || from == 0 {
			return fmt.Errorf("%s is a metadata file of format 1 and %s exists too: move %s aside to convert %s again (an earlier release ran on it since), or move %s aside to keep %s",
				legacy, metaFile, metaFile, legacyFile, legacyFile, metaFile)
		}
		// No earlier release may be using it.
		db, err := open(legacy)
		if err != nil {
			return err
		}
		defer db.Close()
		// A hard link is the same file whatever was written to it since:
		// a write moved its transaction id on.
		var now uint64
		db.View(func(tx *bolt.Tx) error { now = uint64(tx.ID()); return nil })
		if now != from {
			return fmt.Errorf("%s was written after its conversion into %s (by an earlier release): move %s aside to convert %s again, or move %s aside to keep %s",
				legacy, metaFile, metaFile, legacyFile, legacyFile, metaFile)
		}
	}
	_, err = os.Stat(v1)
	return writeStub(root, release, err == nil)
}

// convertedFrom checks the format of the file at path, and returns the
// transaction id of the format 1 file it was converted from, or 0 if it
// was not converted.
func convertedFrom(path string, open func(path string) (*bolt.DB, error)) (uint64, error) {
	db, err := open(path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var from uint64
	err = db.View(func(tx *bolt.Tx) error {
		if err := checkVersion(tx); err != nil {
			return err
		}
		if f := tx.Bucket(bucketFormat); f != nil {
			from, _ = binary.Uvarint(f.Get(keyFromTx))
		}
		return nil
	})
	return from, err
}

// sameFile reports whether the files at a and b are one, or hold the same
// bytes (a copy where hard links are not supported).
func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA != nil || errB != nil || fa.Size() != fb.Size() {
		return false
	}
	if os.SameFile(fa, fb) {
		return true
	}
	ra, errA := os.Open(a)
	rb, errB := os.Open(b)
	if errA != nil || errB != nil {
		return false
	}
	defer ra.Close()
	defer rb.Close()
	bufA, bufB := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, errA := io.ReadFull(ra, bufA)
		nb, _ := io.ReadFull(rb, bufB)
		if na != nb || !bytes.Equal(bufA[:na], bufB[:nb]) {
			return false
		}
		if errA != nil {
			return errA == io.EOF || errA == io.ErrUnexpectedEOF
		}
	}
}

// convertLegacy converts format 1 file legacyFile into metaFile (see
// upgrade.go) and leaves the text in its place.
func convertLegacy(root, release string, open func(path string) (*bolt.DB, error)) error {
	legacy := filepath.Join(root, legacyFile)
	db, err := open(legacy)
	if err != nil {
		return err
	}
	// Held until the text replaced it: no earlier release starts on it
	// meanwhile.
	defer db.Close()
	// A process that converted it first held the lock until it was done;
	// this one holds the old file, kept as meta.db.v1.
	if _, err := os.Stat(filepath.Join(root, metaFile)); err == nil {
		return errConvertedMeanwhile
	}
	info, err := os.Stat(legacy)
	if err != nil {
		return err
	}
	if err := upgradeFile(db, legacy, filepath.Join(root, metaFile)); err != nil {
		return err
	}
	if err := writeStub(root, release, true); err != nil {
		return err
	}
	// Converted by a command run as another user (root), the new files
	// stay the store owner's, whose server must open them.
	ownLike(info, filepath.Join(root, metaFile), legacy, legacy+".v1")
	return nil
}

// writeStub replaces legacyFile with the text, atomically: a crash leaves
// either file whole.
func writeStub(root, release string, converted bool) error {
	legacy := filepath.Join(root, legacyFile)
	if err := WriteFileDurable(legacy, []byte(stubText(release, converted, time.Now())), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", legacy, err)
	}
	return nil
}

// stubText is what legacyFile holds next to metaFile.
func stubText(release string, converted bool, now time.Time) string {
	if release == "" {
		release = "nora"
	}
	origin := "a new store"
	back := "An earlier release cannot use this store.\n"
	if converted {
		origin = "converted from meta.db of format 1, kept as meta.db.v1"
		back = `To go back to an earlier release, with the metadata as it was at the
conversion (what was pushed or deleted since is lost): stop the registry,
then in this directory
    mv meta.db.v1 meta.db && mv metadata.db metadata.db.after
`
	}
	return fmt.Sprintf(`%s

Metadata:   metadata.db, in this directory, format 2
Origin:     %s
Written by: %s, %s

This file takes the place of meta.db, the metadata file of format 1, so
that a release knowing only format 1, started here, fails to open it
("invalid database") rather than find no repository and delete every
blob.

%s
Back up metadata.db with the blobs, not this file.
`, stubFirstLine, origin, release, now.UTC().Format(time.RFC3339), back)
}
