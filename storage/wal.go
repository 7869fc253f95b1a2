package storage

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"hash/fnv"
	"os"

	bolt "go.etcd.io/bbolt"
)

// The metadata journal, metadata.wal beside metadata.db, makes a metadata
// commit durable with one sync instead of bbolt's two (its pages, then its
// meta page, each synced so the meta page never reaches the disk before
// the pages it names).
//
// bbolt runs without syncing. What a commit writes to metadata.db, pages
// and meta page, is also appended to the journal as one record (of each
// page, the bytes bbolt reads: pageUsed in walpage.go), and the commit is
// answered once that record is synced. A checkpoint syncs metadata.db
// and starts the journal afresh. After a power loss, metadata.db holds
// the last checkpoint's state plus any mix of the unsynced writes made
// since, torn or not; recovery (before bbolt opens the file) writes every
// logged record again, in order, and puts the last logged meta page in
// both meta slots, so a meta page a commit wrote but never logged (it was
// not answered) cannot name pages that are missing.
// Pages a commit writes were free in the state before it, so the unlogged
// commit's pages harm nothing, and every page the logged state uses holds
// either its checkpoint bytes (never written since, and synced) or its
// last logged bytes (written again by recovery; the rest of such a page,
// whatever a torn write left there, bbolt never reads).
//
// Layout: two header slots of walSlot bytes, then records. A header holds
// a sequence number (the higher valid one counts), a random epoch and the
// checkpoint's meta page. A record is its epoch, its length and a CRC,
// then (offset, length, bytes) entries; reading stops at the first record
// that is torn or of another epoch, so records left from an earlier epoch
// are never replayed; the file grows in steps of walGrow, the zeros after
// the last record ending it as any record of another epoch would. An
// empty journal holds nothing: recovery and a clean close leave it so.
const (
	walFile      = "metadata.wal"
	walMagic     = "nora-wal"
	walSlot      = 512
	walStart     = 2 * walSlot
	walMetaLen   = 128 // of a bbolt meta page, what bbolt reads: its page header and meta
	walRecHeader = 16
	walEntry     = 12
	// walCheckpoint is the journal size past which a commit checkpoints:
	// at most what recovery writes again, and the disk the journal takes
	// while the registry runs (a clean close frees it).
	walCheckpoint = 8 << 20
	// walKeepRecord bounds the copy of a commit's writes that the journal
	// keeps for the next commit: a tag's takes about 16 KiB, a batch of
	// concurrent pushes a few hundred KiB, an audit batch several MiB.
	walKeepRecord = 1 << 20
	// walMaxRecord bounds the copy a commit keeps of its writes; a larger
	// commit (a GC pass's deletions) checkpoints instead of logging.
	walMaxRecord = 16 << 20
	// walGrow is the step in which the journal file grows: a record that
	// reaches past its end is followed by zeros up to the next multiple,
	// so the records after it overwrite blocks already written, and their
	// sync writes data only. A sync that also writes the file's new size
	// and blocks costs about twice as much on ext4, with or without its
	// journal, and XFS (see the README's performance notes).
	walGrow = 1 << 20
)

// walZeros is what grow writes, a piece at a time.
var walZeros [64 << 10]byte

var walCRC = crc32.MakeTable(crc32.Castagnoli)

// journal logs the commits of one bbolt file. Its methods run in the
// write transaction's goroutine, one commit at a time.
type journal struct {
	f        *os.File
	db       *bolt.DB
	pageSize int
	seq      uint64 // of the header in force
	epoch    uint64
	end      int64  // where the next record goes
	size     int64  // of the file: records before it overwrite written blocks
	limit    int64  // journal size past which a commit checkpoints
	meta     []byte // the meta page of the last commit
	rec      []byte // the commit being captured: record header, then entries
	over     bool   // the commit outgrew walMaxRecord
	active   bool   // between begin and commit
	unlogged bool   // a commit is not in the journal: the next one checkpoints
	dirty    bool   // commits logged since the last checkpoint
	// trace, in tests, sees every write to both files and every sync
	// (b nil), in order.
	trace func(file string, off int64, b []byte)
}

// walHeader is a decoded header slot.
type walHeader struct {
	seq, epoch uint64
	pageSize   int
	meta       []byte
}

func encodeWALHeader(h walHeader) []byte {
	b := make([]byte, walSlot)
	copy(b, walMagic)
	binary.LittleEndian.PutUint32(b[8:], uint32(h.pageSize))
	binary.LittleEndian.PutUint64(b[16:], h.seq)
	binary.LittleEndian.PutUint64(b[24:], h.epoch)
	copy(b[32:32+walMetaLen], h.meta)
	n := 32 + walMetaLen
	binary.LittleEndian.PutUint32(b[n:], crc32.Checksum(b[:n], walCRC))
	return b
}

func decodeWALHeader(b []byte) (walHeader, bool) {
	n := 32 + walMetaLen
	if len(b) < n+4 || string(b[:8]) != walMagic || binary.LittleEndian.Uint32(b[n:]) != crc32.Checksum(b[:n], walCRC) {
		return walHeader{}, false
	}
	return walHeader{
		pageSize: int(binary.LittleEndian.Uint32(b[8:])),
		seq:      binary.LittleEndian.Uint64(b[16:]),
		epoch:    binary.LittleEndian.Uint64(b[24:]),
		meta:     b[32 : 32+walMetaLen],
	}, true
}

// readWALHeader returns the header in force in the journal's first bytes.
func readWALHeader(b []byte) (walHeader, bool) {
	if len(b) < walStart {
		return walHeader{}, false
	}
	h0, ok0 := decodeWALHeader(b[:walSlot])
	h1, ok1 := decodeWALHeader(b[walSlot:walStart])
	if ok1 && (!ok0 || h1.seq > h0.seq) {
		return h1, true
	}
	return h0, ok0
}

// walRecords calls fn with the entries of each whole record of epoch
// in b, from walStart on, and returns the meta page of the last one.
func walRecords(b []byte, epoch uint64, pageSize int, fn func(off int64, data []byte)) []byte {
	var last []byte
	for at := walStart; at+walRecHeader <= len(b); {
		h := b[at : at+walRecHeader]
		n := int(binary.LittleEndian.Uint32(h[8:]))
		if binary.LittleEndian.Uint64(h) != epoch || n > len(b)-at-walRecHeader {
			break
		}
		body := b[at+walRecHeader : at+walRecHeader+n]
		crc := crc32.Update(crc32.Checksum(h[:12], walCRC), walCRC, body)
		if crc != binary.LittleEndian.Uint32(h[12:]) {
			break
		}
		for len(body) >= walEntry {
			off := int64(binary.LittleEndian.Uint64(body))
			size := int(binary.LittleEndian.Uint32(body[8:]))
			if off < 0 || size > len(body)-walEntry {
				return last // a record this registry did not write
			}
			data := body[walEntry : walEntry+size]
			if isMetaWrite(off, len(data), pageSize) {
				last = data
			}
			if fn != nil {
				fn(off, data)
			}
			body = body[walEntry+size:]
		}
		at += walRecHeader + n
	}
	return last
}

// isMetaWrite reports whether a write of n bytes at off is of a meta
// page, as logged (cut to walMetaLen) or as bbolt writes it.
func isMetaWrite(off int64, n, pageSize int) bool {
	return (off == 0 || off == int64(pageSize)) && (n == walMetaLen || n == pageSize)
}

// metaTxid returns the transaction id in a bbolt meta page's first bytes
// (page header of 16 bytes, then magic, version, page size, flags, root
// bucket, free list and high water mark), in the machine's byte order as
// bbolt writes it, and whether its checksum holds.
func metaTxid(p []byte) (uint64, bool) {
	if len(p) < 80 {
		return 0, false
	}
	sum := fnv.New64a()
	sum.Write(p[16:72])
	return binary.NativeEndian.Uint64(p[64:]), binary.NativeEndian.Uint64(p[72:]) == sum.Sum64()
}

// metaForSlot returns meta page p as written to meta slot id.
func metaForSlot(p []byte, id uint64) []byte {
	q := append([]byte(nil), p...)
	binary.NativeEndian.PutUint64(q, id)
	return q
}

func randomEpoch() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// errWALStale means a journal does not belong to the metadata file beside
// it: the file is older than the journal's checkpoint (restored from a
// backup) or was written since without it.
var errWALStale = errors.New("journal does not match the metadata file")
