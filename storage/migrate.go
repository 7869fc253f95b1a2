package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
)

// MigrateProgress is a running count of a migration, and its summary when
// Migrate returns.
type MigrateProgress struct {
	Blobs        int   // blobs in the source
	Bytes        int64 // their total size
	Copied       int   // blobs copied and verified
	CopiedBytes  int64
	Skipped      int // already in the destination with the right size
	SkippedBytes int64
	Failed       int // unreadable, or content not matching the digest
	// Read is the bytes read from the source so far, those of blobs
	// still copying included: with SkippedBytes, how far the copy is.
	Read    int64
	Elapsed time.Duration
}

// migrateEvery is how often Migrate reports progress.
var migrateEvery = 5 * time.Second

// Migrate copies every blob of from that to lacks, verifying each against
// its digest before it becomes visible in to: bytes go to an upload key
// first and are moved into place once verified. Keys under uploads/ are
// copied too, to the same key, checked by size only: they hold upload
// sessions, and the blobs S3 keeps where their upload wrote them, which
// metadata (not read here, as the server may hold it) names by key. Blobs already in to with
// the same size are skipped, so an interrupted migration resumes where it
// stopped. progress, if not nil, is called every few seconds from one
// goroutine until the last blob is done, while large blobs copy too;
// failures are reported through fail and counted, and the migration goes
// on. The error is for what stops it: a listing failure or
// ctx.
func Migrate(ctx context.Context, from, to Driver, workers int, progress func(MigrateProgress), fail func(key string, err error)) (MigrateProgress, error) {
	start := time.Now()
	type blob struct {
		key  string
		size int64
	}
	var blobs []blob
	var p MigrateProgress
	for _, prefix := range []string{"blobs", "uploads"} {
		err := from.Walk(ctx, prefix, func(key string, size int64) error {
			if _, ok := blobKeyDigest(key); ok || prefix == "uploads" {
				blobs = append(blobs, blob{key, size})
				p.Blobs++
				p.Bytes += size
			}
			return nil
		})
		if err != nil {
			return p, fmt.Errorf("list source blobs: %w", err)
		}
	}
	var copied, skipped, failed atomic.Int64
	var copiedBytes, skippedBytes, read atomic.Int64
	snapshot := func() MigrateProgress {
		q := p
		q.Copied, q.CopiedBytes = int(copied.Load()), copiedBytes.Load()
		q.Skipped, q.SkippedBytes = int(skipped.Load()), skippedBytes.Load()
		q.Failed, q.Read = int(failed.Load()), read.Load()
		q.Elapsed = time.Since(start)
		return q
	}
	work := make(chan blob)
	var wg sync.WaitGroup
	var failMu sync.Mutex
	for range max(workers, 1) {
		wg.Go(func() {
			for b := range work {
				if size, err := to.Stat(ctx, b.key); err == nil && size == b.size {
					skipped.Add(1)
					skippedBytes.Add(b.size)
					continue
				}
				if err := migrateBlob(ctx, from, to, b.key, &read); err != nil {
					failed.Add(1)
					if fail != nil {
						failMu.Lock()
						fail(b.key, err)
						failMu.Unlock()
					}
					continue
				}
				copied.Add(1)
				copiedBytes.Add(b.size)
			}
		})
	}
	tick := time.NewTicker(migrateEvery)
	defer tick.Stop()
	report := func() {
		if progress != nil {
			progress(snapshot())
		}
	}
feed:
	for _, b := range blobs {
		for {
			select {
			case work <- b:
				continue feed
			case <-ctx.Done():
				break feed
			case <-tick.C:
				report()
			}
		}
	}
	close(work)
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	for { // the last blobs may take long to copy
		select {
		case <-finished:
			return snapshot(), ctx.Err()
		case <-tick.C:
			report()
		}
	}
}

// countingReader adds the bytes read through it to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// migrateBlob copies the blob at key from one driver to the other,
// verifying its digest on the way when key is a blob key, and adds the
// bytes it reads to read.
func migrateBlob(ctx context.Context, from, to Driver, key string, read *atomic.Int64) error {
	d, ok := blobKeyDigest(key)
	alg := digest.SHA256 // for an upload key, hashed for nothing
	if ok {
		alg = d.Algorithm()
	}
	h, err := newHash(alg)
	if err != nil {
		return err
	}
	rc, err := from.Reader(ctx, key, 0)
	if err != nil {
		return err
	}
	defer rc.Close()
	var raw [16]byte
	rand.Read(raw[:])
	tmp := uploadKey(hex.EncodeToString(raw[:]))
	w, err := to.Writer(ctx, tmp, 0)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := copyHashed(w, h, countingReader{rc, read}); err != nil {
		w.Close()
		to.Delete(ctx, tmp)
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); ok && got != d.Encoded() {
		w.Close()
		to.Delete(ctx, tmp)
		return fmt.Errorf("%w: content hashes to %s:%s", ErrDigestMismatch, d.Algorithm(), got)
	}
	if err := w.Commit(); err != nil {
		to.Delete(ctx, tmp)
		return err
	}
	if err := to.Move(ctx, tmp, key); err != nil {
		to.Delete(ctx, tmp)
		return err
	}
	return nil
}
