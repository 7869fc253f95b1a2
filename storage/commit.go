package storage

import (
	"errors"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// committer groups concurrent metadata writes into shared transactions, so
// N writers waiting on the disk pay for one commit instead of N.
// A lone writer is never delayed: a batch starts as soon as the previous
// one commits, and holds whatever arrived meanwhile. A writer that finds
// no batch running commits its own in its goroutine, and leaves the
// writers that queued meanwhile to a goroutine of theirs: a lone writer so
// pays for no goroutine, no hand-over and no stack growth. Once writers have been
// seen together, a batch waits a little for the ones the previous commit
// just answered: left alone, concurrent writers split into two halves that
// take turns, each waiting for the other's commit, and every commit carries
// half of them.
type committer struct {
	db      *bolt.DB
	wal     *journal   // nil: bbolt syncs each commit itself
	walMu   sync.Mutex // held from a transaction's start until its commit is durable
	reserve *metaReserve
	mu      sync.Mutex
	pending []*commitCall
	running bool
	arrived chan struct{} // a call was queued while the loop runs

	// gen is the metadata generation: odd while a write transaction runs,
	// moved on to the next even value once it ends (see hotmanifests.go).
	// The parity holds because tx runs one transaction at a time: from
	// the loop, and from Open before any call. Every write goes through
	// tx: one that bypassed it would neither move gen nor be journaled.
	gen atomic.Uint64
	hot hotManifests

	// Used by the goroutine running batches, one at a time.
	writers int           // writers seen together: the last batch and those queued behind it
	took    time.Duration // how long the last commit took
	skip    int           // batches left that start without waiting, after a wait in vain
}

type commitCall struct {
	fn   func(*bolt.Tx) error
	dirs []string // synced before the transaction
	done chan error
}

// maxGather bounds how long a batch waits for writers the previous commit
// answered; the wait is also at most as long as the last commit. After a
// wait in vain (writers busy elsewhere, such as sending a blob), the next
// gatherRest batches start at once.
const (
	maxGather  = 2 * time.Millisecond
	gatherRest = 16
)

// update runs fn in a write transaction, possibly shared with other calls.
// fn may run more than once (when another call in its batch fails), so it
// must only touch tx and variables it fully overwrites.
func (c *committer) update(fn func(*bolt.Tx) error) error {
	return c.updateAfterSync(nil, fn)
}

// updateAfterSync is update for a write that records names just made in
// directories dirs (see Filesystem.moveUnsynced): they are synced before
// the transaction commits, each once for all the calls of the batch that
// name it. If a sync fails, fn does not run and the call returns the
// error.
func (c *committer) updateAfterSync(dirs []string, fn func(*bolt.Tx) error) error {
	call := &commitCall{fn: fn, dirs: dirs, done: make(chan error, 1)}
	c.mu.Lock()
	c.pending = append(c.pending, call)
	if c.running {
		select {
		case c.arrived <- struct{}{}:
		default:
		}
		c.mu.Unlock()
		return <-call.done
	}
	c.running = true
	if c.arrived == nil {
		c.arrived = make(chan struct{}, 1)
	}
	c.mu.Unlock()
	// No batch runs and call is queued: the next batch holds it.
	if c.batch() {
		go c.loop()
	}
	return <-call.done
}

func (c *committer) loop() {
	for c.batch() {
	}
}

// batch commits the writes queued, after gathering, and reports whether
// more are queued; if none are, the committer stops running.
func (c *committer) batch() (more bool) {
	c.mu.Lock()
	c.gather()
	batch := c.pending
	c.pending = nil
	if len(batch) == 0 {
		c.running = false
		c.mu.Unlock()
		return false
	}
	c.mu.Unlock()
	start := time.Now()
	c.runGuarded(batch)
	c.took = time.Since(start)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writers = len(batch) + len(c.pending)
	if len(c.pending) == 0 {
		c.running = false
	}
	return len(c.pending) > 0
}

// runGuarded is run, in whichever goroutine commits: a write that panics
// stops the process, as it did when every batch ran in a goroutine of its
// own, rather than net/http's recovery in a handler's goroutine leaving
// the committer marked running with nobody to answer its writers.
func (c *committer) runGuarded(batch []*commitCall) {
	defer func() {
		if r := recover(); r != nil {
			os.Stderr.Write(debug.Stack())
			go panic(r)
			select {}
		}
	}()
	c.run(batch)
}

// gather waits, with c.mu held, until as many writers as were last seen
// together are queued, for at most as long as the last commit and
// maxGather. A wait that runs out costs the next gatherRest batches theirs,
// so writers that do not come straight back cost one short wait.
func (c *committer) gather() {
	if len(c.pending) == 0 || len(c.pending) >= c.writers {
		return
	}
	if c.skip > 0 {
		c.skip--
		return
	}
	t := time.NewTimer(min(c.took, maxGather))
	defer t.Stop()
	for len(c.pending) < c.writers {
		c.mu.Unlock()
		select {
		case <-c.arrived:
			c.mu.Lock()
		case <-t.C:
			c.mu.Lock()
			c.skip = gatherRest
			return
		}
	}
}

// run commits batch in one transaction. If a call fails, the transaction is
// rolled back, that call is answered on its own, and the rest run again.
// If the commit fails for lack of space, each call runs on its own: a
// smaller transaction needs fewer new pages, and each one that commits
// frees pages for the next (a GC pass deleting repository by repository).
func (c *committer) run(batch []*commitCall) {
	batch = syncBatchDirs(batch)
	for len(batch) > 0 {
		failed := -1
		err := c.tx(func(tx *bolt.Tx) error {
			for i, call := range batch {
				if err := call.fn(tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			if errors.Is(err, ErrStorageFull) && len(batch) > 1 {
				for _, call := range batch {
					call.done <- c.tx(call.fn)
				}
				return
			}
			for _, call := range batch {
				call.done <- err
			}
			return
		}
		bad := batch[failed]
		batch = append(batch[:failed:failed], batch[failed+1:]...)
		if len(batch) == 0 {
			bad.done <- err
			return
		}
		bad.done <- c.tx(bad.fn)
	}
}

// syncBatchDirs syncs each directory the calls of batch name, once, and all at
// the same time: the sync of a directory whose new names are already on
// disk still flushes the disk's cache, and concurrent flushes merge. It
// answers the calls whose directory failed to sync and returns the others.
func syncBatchDirs(batch []*commitCall) []*commitCall {
	var dirs []string
	for _, call := range batch {
		for _, dir := range call.dirs {
			if !slices.Contains(dirs, dir) {
				dirs = append(dirs, dir)
			}
		}
	}
	if len(dirs) == 0 {
		return batch
	}
	errs := make([]error, len(dirs))
	var wg sync.WaitGroup
	for i, dir := range dirs {
		wg.Go(func() { errs[i] = syncDir(dir) })
	}
	wg.Wait()
	if errors.Join(errs...) == nil {
		return batch
	}
	return slices.DeleteFunc(batch, func(call *commitCall) bool {
		for _, dir := range call.dirs {
			if err := errs[slices.Index(dirs, dir)]; err != nil {
				call.done <- full(err)
				return true
			}
		}
		return false
	})
}

// tx runs fn in a write transaction after topping up the metadata reserve,
// and marks a failure for lack of space as ErrStorageFull.
func (c *committer) tx(fn func(*bolt.Tx) error) error {
	c.gen.Add(1)
	defer c.gen.Add(1)
	c.walMu.Lock()
	defer c.walMu.Unlock()
	if c.wal != nil {
		if err := c.wal.begin(); err != nil {
			return full(err)
		}
	}
	err := c.db.Update(func(tx *bolt.Tx) error {
		if c.reserve != nil {
			c.reserve.ensure(tx)
		}
		return fn(tx)
	})
	switch {
	case c.wal == nil:
	case err != nil:
		c.wal.abort() // a failed commit writes no meta page: its state is unchanged
	default:
		err = c.wal.commit()
	}
	return full(err)
}

// idle lets go of the journal's buffer for a commit's writes; the next
// commit makes a new one.
func (c *committer) idle() {
	c.walMu.Lock()
	defer c.walMu.Unlock()
	if c.wal != nil {
		c.wal.rec = nil
	}
}

// closeJournal makes every commit durable in the metadata file and empties
// the journal; commits from then on, if any, sync themselves.
func (c *committer) closeJournal() error {
	c.walMu.Lock()
	defer c.walMu.Unlock()
	if c.wal == nil {
		return nil
	}
	err := c.wal.close()
	c.wal = nil
	c.db.NoSync = false
	return err
}
