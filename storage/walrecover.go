package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// lockJournal opens (creating if needed) the journal of the metadata file
// at path and locks it, waiting up to timeout for another process to let
// go (ErrStoreBusy). The lock is held until the file is closed: a process
// recovers the journal, or writes it, only while it holds it, since a
// journal recovered under a running server would be written into its file.
func lockJournal(path string, timeout time.Duration) (*walLock, error) {
	jpath := filepath.Join(filepath.Dir(path), walFile)
	_, err := os.Stat(jpath)
	created := errors.Is(err, fs.ErrNotExist)
	f, err := os.OpenFile(jpath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(timeout); !tryLock(f); {
		if time.Now().After(deadline) {
			f.Close()
			if created {
				os.Remove(jpath)
			}
			return nil, ErrStoreBusy
		}
		time.Sleep(50 * time.Millisecond)
	}
	if created {
		if fi, err := os.Stat(path); err == nil {
			ownLike(fi, jpath)
		}
		syncDir(filepath.Dir(path))
	}
	return &walLock{f, created}, nil
}

// walLock is a locked journal file.
type walLock struct {
	*os.File
	created bool // by lockJournal
}

// abandon closes the journal of a store that failed to open, and removes
// it if lockJournal created it and it is still empty: a refused store is
// left as it was found.
func (l *walLock) abandon() {
	l.Close()
	if fi, err := os.Stat(l.Name()); l.created && err == nil && fi.Size() == 0 {
		os.Remove(l.Name())
	}
}

// recoverJournal brings the metadata file at path up to date with the
// commits its journal j logged, before bbolt opens it, then empties j. A
// journal that does not belong to the file (errWALStale) is copied aside
// to metadata.wal.stale, and the file is left as it is.
func recoverJournal(j *os.File, path string) error {
	fi, err := j.Stat()
	if err != nil {
		return err
	}
	b := make([]byte, fi.Size())
	if _, err := j.ReadAt(b, 0); err != nil {
		return err
	}
	h, ok := readWALHeader(b)
	if !ok {
		return nil // empty, or emptied by recovery or a clean close
	}
	db, err := os.OpenFile(path, os.O_RDWR, 0)
	if err == nil {
		err = replayJournal(db, b, h)
		db.Close()
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errWALStale) {
		err = os.WriteFile(j.Name()+".stale", b, 0o600)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", j.Name(), err)
	}
	if err := j.Truncate(0); err != nil {
		return err
	}
	return fdatasync(j)
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
