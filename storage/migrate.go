package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
)

// MigrateProgress is a running count of a migration, and its summary when
// Migrate returns.
type MigrateProgress struct {
	Blobs       int   // blobs in the source
	Bytes       int64 // their total size
	Copied      int   // blobs copied and verified
	CopiedBytes int64
	Skipped     int // already in the destination with the right size
	Failed      int // unreadable, or content not matching the digest
	Elapsed     time.Duration
}

// Migrate copies every blob of from that to lacks, verifying each against
// its digest before it becomes visible in to: bytes go to an upload key
// first and are moved into place once verified. Keys under uploads/ are
// copied too, to the same key, checked by size only: they hold upload
// sessions, and the blobs S3 keeps where their upload wrote them, which
// metadata (not read here, as the server may hold it) names by key. Blobs already in to with
// the same size are skipped, so an interrupted migration resumes where it
// stopped. progress, if not nil, is called now and then from one
// goroutine; failures are reported through fail and counted, and the
// migration goes on. The error is for what stops it: a listing failure or
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
	var copiedBytes atomic.Int64
	snapshot := func() MigrateProgress {
		q := p
		q.Copied, q.CopiedBytes = int(copied.Load()), copiedBytes.Load()
		q.Skipped, q.Failed = int(skipped.Load()), int(failed.Load())
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
					continue
				}
				if err := migrateBlob(ctx, from, to, b.key); err != nil {
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
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
feed:
	for _, b := range blobs {
		for {
			select {
			case work <- b:
				continue feed
			case <-ctx.Done():
				break feed
			case <-tick.C:
				if progress != nil {
					progress(snapshot())
				}
			}
		}
	}
	close(work)
	wg.Wait()
	return snapshot(), ctx.Err()
}

// migrateBlob copies the blob at key from one driver to the other,
// verifying its digest on the way when key is a blob key.
func migrateBlob(ctx context.Context, from, to Driver, key string) error {
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
	if _, err := copyHashed(w, h, rc); err != nil {
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
