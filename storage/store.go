package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Store is the registry's storage: metadata in one bbolt file
// (metadata.db) and blob bytes behind a Driver. It is safe for concurrent use.
type Store struct {
	root   string // the data directory
	meta   atomic.Pointer[metaHandle]
	commit *committer
	blobs  Driver
	pulls  *pullRecorder
	checks *checkRecorder
	// writing holds the uploads whose bytes are arriving: the orphan
	// scan must not take the file of one without a session record (a
	// blob pushed in one request) for a crash's leftovers, and a
	// session receiving a long chunk is not idle.
	writing inflight
	limits  uploadLimits
	events  eventLog

	mapReleased atomic.Int64 // when releaseMapped last ran, in UnixNano

	// compacting is held by a compaction (compact.go) and by Close;
	// closed, under it, stops compactions once the store is closed.
	compacting  sync.Mutex
	closed      bool
	compactWake chan struct{} // see WakeCompactor
	compactions atomic.Int64  // done since Open
}

// Open opens (creating if needed) the store described by cfg. It fails if
// another process holds the metadata file.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Root, 0o750); err != nil {
		return nil, fmt.Errorf("storage.root: %w", err)
	}
	drv, err := OpenDriver(ctx, cfg)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(cfg.Root, metaFile)
	var walf *walLock // the journal, locked from its recovery on
	db, err := openMetaFile(cfg.Root, cfg.Release, func(path string) (*bolt.DB, error) {
		if filepath.Base(path) == metaFile {
			if walf == nil {
				f, err := lockJournal(path, metaOptions().Timeout)
				if err != nil {
					return nil, fmt.Errorf("open %s: %w", path, err)
				}
				walf = f
			}
			if err := recoverJournal(walf.File, path); err != nil {
				return nil, fmt.Errorf("open %s: %w", path, err)
			}
		}
		db, err := bolt.Open(path, 0o600, metaOptions())
		if errors.Is(err, bolt.ErrTimeout) {
			err = ErrStoreBusy
		}
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		return db, nil
	})
	if err != nil {
		if walf != nil {
			walf.abandon()
		}
		return nil, err
	}
	wal, err := openJournal(db, walf.File, path)
	if wal == nil {
		walf.abandon()
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	commit := &committer{db: db, wal: wal, reserve: &metaReserve{path: path}}
	if err := initMeta(db, commit); err != nil {
		commit.closeJournal()
		walf.abandon()
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// Copies of blobs in flight, left by a crash.
	os.RemoveAll(filepath.Join(cfg.Root, followDir))
	s := &Store{root: cfg.Root, commit: commit, blobs: drv, checks: newCheckRecorder(), writing: inflight{ids: map[string]struct{}{}}}
	s.meta.Store(newMetaHandle(db))
	s.compactWake = make(chan struct{}, 1)
	// A compaction's new file, left by a crash before it was put in place.
	os.Remove(path + compactSuffix)
	s.pulls = newPullRecorder(s)
	s.limits.total, s.limits.perClient = cfg.MaxUploads, cfg.MaxUploadsPerClient
	s.limits.maxBlob, _ = ParseSize(cfg.MaxBlobSize)
	s.limits.idle, _ = parseDurationOrZero(cfg.UploadIdleExpiry)
	s.adoptMultipart(ctx)
	// The first open of a file without a free list read every page.
	s.releaseMapped()
	return s, nil
}

// metaOptions returns the options metadata.db is opened with, and is
// written with by a conversion (upgrade.go).
func metaOptions() *bolt.Options {
	return &bolt.Options{
		Timeout: time.Second,
		// The free list is written with every commit, in the same syncs,
		// rather than rebuilt at open, which reads every page of the
		// file: start-up reads a bounded amount of it whatever its size.
		// It takes 8 bytes per free page: a page or two in a full file,
		// 400 KB (4 ms more per commit here) with 50,000 free pages after
		// a large deletion. A file written without it is read whole once,
		// at its first open, and has one from then on.
		FreelistType: bolt.FreelistMapType,
	}
}

// initMeta checks the file's format and creates the buckets a store
// needs, in a write transaction only if one is missing: a commit costs
// two syncs, which every start of an existing store would otherwise pay
// before its first request.
func initMeta(db *bolt.DB, commit *committer) error {
	complete := false
	err := db.View(func(tx *bolt.Tx) error {
		if err := checkVersion(tx); err != nil {
			return err
		}
		complete = tx.Bucket(bucketFormat) != nil && tx.Bucket(bucketUploadCounts) != nil
		for _, name := range metaBuckets {
			complete = complete && tx.Bucket(name) != nil
		}
		return nil
	})
	if err != nil || complete {
		return err
	}
	return openFormat(commit, initUploadCounts)
}

// ErrStoreBusy means another process holds the metadata file open: a
// server, or a command run beside it.
var ErrStoreBusy = errors.New("another process holds it")

// ErrNoStore means OpenExisting found no metadata file in the data
// directory: neither metadata.db nor the meta.db of earlier releases.
var ErrNoStore = errors.New("no registry store")

// OpenExisting is Open for a store that must already exist, as every
// command but the server needs: it creates nothing, and fails with
// ErrNoStore, naming the data directory, when it holds no metadata.db and
// no meta.db (which Open converts, or which names metadata.db).
func OpenExisting(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("storage.root: %w", err)
	}
	if _, err := os.Stat(filepath.Join(root, metaFile)); err != nil {
		if _, lerr := os.Stat(filepath.Join(root, legacyFile)); lerr != nil {
			return nil, fmt.Errorf("%w in %s: %w", ErrNoStore, root, err)
		}
	}
	return Open(ctx, cfg)
}

// OpenDriver returns the blob driver cfg selects.
func OpenDriver(ctx context.Context, cfg Config) (Driver, error) {
	if cfg.Driver == "s3" {
		return NewS3(ctx, cfg.S3, filepath.Join(cfg.Root, "s3-spool"))
	}
	return NewFilesystem(cfg.Root)
}

// Idle lets go of what the store keeps only to be faster, for a server at
// rest: the journal's buffer for a commit's writes (up to walKeepRecord,
// grown by a burst of concurrent pushes) and this process's mapping of
// the metadata file's pages, which stay in the page cache and fault back
// in on their next read. The next request pays a few page faults and an
// allocation.
func (s *Store) Idle() {
	s.commit.idle()
	s.releaseMappedNow()
}

// Close flushes recorded pull times, makes every commit durable in the
// metadata file, and closes it.
func (s *Store) Close() error {
	s.pulls.close()
	s.compacting.Lock() // a compaction under way ends first
	defer s.compacting.Unlock()
	s.closed = true
	return errors.Join(s.commit.closeJournal(), s.metaDB().Close())
}

// readyTimeout bounds Ready: a readiness probe must answer in a few
// seconds, whatever the blob store's own timeout and retries (with S3's
// defaults, 30 s times 3).
const readyTimeout = 3 * time.Second

// Ready reports whether metadata and blob storage are usable, within
// readyTimeout. Its error says which part is not, and why.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRepos) == nil {
			return errors.New("metadata: repositories bucket missing")
		}
		return nil
	}); err != nil {
		return err
	}
	bctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	_, err := s.blobs.Stat(bctx, "ready")
	if err == nil || errors.Is(err, ErrNotFound) {
		return nil
	}
	if bctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		what := "the blob store"
		if d, ok := s.blobs.(*S3); ok {
			what = "S3 at " + d.endpoint
		}
		return fmt.Errorf("blob store: %s did not answer within %s", what, readyTimeout)
	}
	return fmt.Errorf("blob store: %w", err)
}
