package storage

import (
	"context"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// pullFlushInterval bounds how stale a recorded pull time can be. Pulls are
// batched because one write transaction per manifest GET would cap pull
// throughput at the disk's sync rate.
const pullFlushInterval = 5 * time.Second

type pullKey struct {
	repo   string
	digest digest.Digest
}

type pullRecorder struct {
	store   *Store
	mu      sync.Mutex
	pending map[pullKey]time.Time
	stop    chan struct{}
	done    chan struct{}
}

func newPullRecorder(s *Store) *pullRecorder {
	p := &pullRecorder{store: s, pending: map[pullKey]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

// RecordPull notes that manifest d of repo was pulled now. The time reaches
// the metadata file within a few seconds, and on Close.
func (s *Store) RecordPull(ctx context.Context, repo string, d digest.Digest) {
	p := s.pulls
	p.mu.Lock()
	p.pending[pullKey{repo, d}] = time.Now()
	p.mu.Unlock()
}

// LastPulled returns when manifest d of repo was last pulled, if ever.
func (s *Store) LastPulled(ctx context.Context, repo string, d digest.Digest) (time.Time, bool) {
	p := s.pulls
	p.mu.Lock()
	t, ok := p.pending[pullKey{repo, d}]
	p.mu.Unlock()
	if ok {
		return t, true
	}
	s.view(func(tx *bolt.Tx) error {
		if id := tx.Bucket(bucketRepos).Get([]byte(repo)); id != nil {
			t, ok = getTime(tx.Bucket(bucketPulls), digestAt(id, d))
		}
		return nil
	})
	return t, ok
}

func (p *pullRecorder) loop() {
	defer close(p.done)
	tick := time.NewTicker(pullFlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			p.flush()
		case <-p.stop:
			p.flush()
			return
		}
	}
}

func (p *pullRecorder) flush() {
	p.mu.Lock()
	batch := p.pending
	p.pending = map[pullKey]time.Time{}
	p.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	p.store.commit.update(func(tx *bolt.Tx) error {
		for k, t := range batch {
			id := tx.Bucket(bucketRepos).Get([]byte(k.repo))
			if id == nil || tx.Bucket(bucketManifests).Get(digestAt(id, k.digest)) == nil {
				continue // deleted since
			}
			if err := putTime(tx.Bucket(bucketPulls), digestAt(id, k.digest), t); err != nil {
				return err
			}
		}
		return nil
	})
}

func (p *pullRecorder) close() {
	close(p.stop)
	<-p.done
}
