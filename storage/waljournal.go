package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"

	bolt "go.etcd.io/bbolt"
)

// openJournal starts journal f, locked by lockJournal, of db, the
// metadata file at path, which recoverJournal brought up to date before
// bbolt opened it, and turns off bbolt's syncs, which the journal
// replaces. It returns nil, and bbolt syncs as before, if bbolt's writes
// cannot be seen (walhook.go).
func openJournal(db *bolt.DB, f *os.File, path string) (*journal, error) {
	j := &journal{f: f, db: db, pageSize: db.Info().PageSize, limit: walCheckpoint}
	var txid uint64
	db.View(func(tx *bolt.Tx) error {
		txid = uint64(tx.ID())
		return nil
	})
	dbf, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	j.meta = make([]byte, walMetaLen)
	_, err = dbf.ReadAt(j.meta, int64(txid%2)*int64(j.pageSize))
	dbf.Close()
	if err != nil {
		return nil, err
	}
	if got, ok := metaTxid(j.meta); !ok || got != txid {
		return nil, fmt.Errorf("%s: meta page %d does not hold transaction %d", path, txid%2, txid)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	j.size = fi.Size()
	if !hookWrites(db, j.capture) {
		return nil, nil
	}
	db.NoSync = true
	return j, nil
}

// writeHeader starts a new epoch whose checkpoint is j.meta, which must
// be durable in the metadata file.
func (j *journal) writeHeader() error {
	h := walHeader{seq: j.seq + 1, epoch: randomEpoch(), pageSize: j.pageSize, meta: j.meta}
	if err := j.write(encodeWALHeader(h), int64(h.seq%2)*walSlot); err != nil {
		return err
	}
	if err := j.sync(); err != nil {
		return err
	}
	j.seq, j.epoch, j.end, j.dirty = h.seq, h.epoch, walStart, false
	return nil
}

func (j *journal) write(b []byte, off int64) error {
	_, err := j.f.WriteAt(b, off)
	if j.trace != nil {
		j.trace(walFile, off, b)
	}
	return err
}

func (j *journal) sync() error {
	err := fdatasync(j.f)
	if err == nil && j.trace != nil {
		j.trace(walFile, -1, nil)
	}
	return err
}

// capture keeps a copy of a write bbolt made to the metadata file.
func (j *journal) capture(b []byte, off int64) {
	if j.trace != nil {
		j.trace(metaFile, off, b)
	}
	if !j.active {
		// A transaction that did not go through begin: the next one
		// checkpoints first, or its record would follow a state the
		// journal cannot rebuild.
		j.unlogged = true
	}
	if isMetaWrite(off, len(b), j.pageSize) {
		b = b[:walMetaLen]
		j.meta = append(j.meta[:0], b...)
	} else {
		b = b[:pageUsed(b, j.pageSize)]
	}
	if j.over {
		return
	}
	if len(j.rec)+walEntry+len(b) > walMaxRecord {
		j.over = true
		return
	}
	j.rec = binary.LittleEndian.AppendUint64(j.rec, uint64(off))
	j.rec = binary.LittleEndian.AppendUint32(j.rec, uint32(len(b)))
	j.rec = append(j.rec, b...)
}

// begin readies j for a write transaction. It fails if a commit is not in
// the journal and a checkpoint still cannot make it durable: a further
// commit could reuse the pages it freed, which the logged state needs.
func (j *journal) begin() error {
	switch {
	case j.unlogged:
		if err := j.checkpoint(); err != nil {
			return err
		}
	case j.seq == 0:
		// The first commit writes the header: a start that commits
		// nothing pays no sync for it.
		if err := j.writeHeader(); err != nil {
			return fmt.Errorf("%s: %w", j.f.Name(), err)
		}
	}
	if cap(j.rec) < walRecHeader {
		j.rec = make([]byte, walRecHeader, 64<<10)
	}
	j.rec, j.over, j.active = j.rec[:walRecHeader], false, true
	return nil
}

// abort ends a transaction that failed.
func (j *journal) abort() {
	j.active = false
	j.release()
}

// release lets go of a copy larger than most commits need, such as an
// audit batch's: kept, it would stay in the heap of an idle server.
func (j *journal) release() {
	if cap(j.rec) > walKeepRecord {
		j.rec = nil
	}
}

// commit makes the transaction that just committed durable: its record
// appended and synced, or, for one too large or a journal that fails, a
// checkpoint.
func (j *journal) commit() error {
	j.active = false
	defer j.release()
	if len(j.rec) == walRecHeader && !j.over {
		return nil
	}
	var err error
	if !j.over {
		h := j.rec[:walRecHeader]
		binary.LittleEndian.PutUint64(h, j.epoch)
		binary.LittleEndian.PutUint32(h[8:], uint32(len(j.rec)-walRecHeader))
		binary.LittleEndian.PutUint32(h[12:], crc32.Update(crc32.Checksum(h[:12], walCRC), walCRC, j.rec[walRecHeader:]))
		if err = j.write(j.rec, j.end); err == nil {
			j.grow(j.end + int64(len(j.rec)))
			err = j.sync()
		}
		if err == nil {
			j.end += int64(len(j.rec))
			j.dirty = true
			if j.end >= j.limit {
				j.checkpoint() // the commit is durable; a failure is retried at the next
			}
			return nil
		}
	}
	j.unlogged = true
	if cerr := j.checkpoint(); cerr != nil {
		return errors.Join(err, cerr)
	}
	return nil
}

// grow writes zeros from end, the end of a record reaching past the
// file's, to the next multiple of walGrow, synced with the record. The
// zeros are no record (of no epoch), so recovery stops at them as at any
// end. A failure (a full disk) leaves the file to grow with the next
// record: the record itself is written.
func (j *journal) grow(end int64) {
	if end <= j.size {
		return
	}
	to := (end + walGrow - 1) / walGrow * walGrow
	for off := end; off < to; {
		n := min(to-off, int64(len(walZeros)))
		if err := j.write(walZeros[:n], off); err != nil {
			return
		}
		off += n
	}
	j.size = to
}

// checkpoint makes every commit so far durable in the metadata file and
// starts an empty epoch.
func (j *journal) checkpoint() error {
	if err := j.db.Sync(); err != nil {
		return err
	}
	if j.trace != nil {
		j.trace(metaFile, -1, nil)
	}
	if err := j.writeHeader(); err != nil {
		return err
	}
	j.unlogged = false
	return nil
}

// drain makes every commit durable in the metadata file and leaves the
// journal empty, as a clean close does, but open: the next commit starts
// it again with a header.
func (j *journal) drain() error {
	if j.dirty || j.unlogged {
		if err := j.db.Sync(); err != nil {
			return err
		}
	}
	if j.seq > 0 {
		if err := j.f.Truncate(0); err != nil {
			return err
		}
		j.size = 0
		if err := j.sync(); err != nil {
			return err
		}
	}
	j.seq, j.end, j.dirty, j.unlogged = 0, 0, false, false
	return nil
}

// close makes every commit durable in the metadata file, leaves the
// journal empty and lets go of its lock. bbolt must make no further
// commit.
func (j *journal) close() error {
	return errors.Join(j.drain(), j.f.Close())
}
