package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// recoverJournal brings the metadata file at path up to date with the
// commits its journal logged, before bbolt opens it, then empties the
// journal. A journal that does not belong to the file (errWALStale) is
// moved aside to metadata.wal.stale and the file is left as it is.
func recoverJournal(path string) error {
	jpath := filepath.Join(filepath.Dir(path), walFile)
	b, err := os.ReadFile(jpath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	h, ok := readWALHeader(b)
	if !ok {
		return nil // empty, or emptied by recovery or a clean close
	}
	db, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return os.Rename(jpath, jpath+".stale")
	}
	if err != nil {
		return err
	}
	defer db.Close()
	err = replayJournal(db, b, h)
	if errors.Is(err, errWALStale) {
		return os.Rename(jpath, jpath+".stale")
	}
	if err != nil {
		return fmt.Errorf("%s: %w", jpath, err)
	}
	return emptyJournal(jpath)
}

// replayJournal writes the records of journal b, whose header is h, to
// db, puts the last logged meta page in both meta slots, and syncs db.
func replayJournal(db *os.File, b []byte, h walHeader) error {
	last := walRecords(b, h.epoch, h.pageSize, nil)
	if last == nil {
		last = h.meta
	}
	logged, ok := metaTxid(last)
	checkpoint, ok2 := metaTxid(h.meta)
	if !ok || !ok2 {
		return errors.New("journal: bad meta page")
	}
	if err := journalMatches(db, h.pageSize, checkpoint, logged); err != nil {
		return err
	}
	var err error
	walRecords(b, h.epoch, h.pageSize, func(off int64, data []byte) {
		if err == nil {
			_, err = db.WriteAt(data, off)
		}
	})
	for id := range uint64(2) {
		if err == nil {
			_, err = db.WriteAt(metaForSlot(last, id), int64(id)*int64(h.pageSize))
		}
	}
	if err != nil {
		return err
	}
	return fdatasync(db)
}

// journalMatches checks that db's meta slots are what the journal's
// commits can have left: each valid one no older than the checkpoint's
// (unless torn over, so one older may remain) and no newer than the
// commit after the last logged one, which may have written its meta page
// without being logged. Both older: db was restored from a backup. One
// newer: db was written since without the journal.
func journalMatches(db *os.File, pageSize int, checkpoint, logged uint64) error {
	older := 0
	for id := range 2 {
		p := make([]byte, walMetaLen)
		if _, err := db.ReadAt(p, int64(id*pageSize)); err != nil {
			continue
		}
		txid, ok := metaTxid(p)
		if !ok {
			continue
		}
		if int(binary.NativeEndian.Uint32(p[24:])) != pageSize || txid > logged+1 {
			return errWALStale
		}
		if txid < checkpoint {
			older++
		}
	}
	if older == 2 {
		return errWALStale
	}
	return nil
}

// emptyJournal empties the journal at path.
func emptyJournal(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(0); err != nil {
		return err
	}
	return fdatasync(f)
}
