package storage

import (
	"errors"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// committer groups concurrent metadata writes into shared transactions, so
// N writers waiting on the disk pay for one sync instead of N. A lone writer
// is never delayed: a batch starts as soon as the previous one commits, and
// holds whatever arrived meanwhile.
type committer struct {
	db      *bolt.DB
	reserve *metaReserve
	mu      sync.Mutex
	pending []*commitCall
	running bool
}

type commitCall struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// update runs fn in a write transaction, possibly shared with other calls.
// fn may run more than once (when another call in its batch fails), so it
// must only touch tx and variables it fully overwrites.
func (c *committer) update(fn func(*bolt.Tx) error) error {
	call := &commitCall{fn: fn, done: make(chan error, 1)}
	c.mu.Lock()
	c.pending = append(c.pending, call)
	if !c.running {
		c.running = true
		go c.loop()
	}
	c.mu.Unlock()
	return <-call.done
}

func (c *committer) loop() {
	for {
		c.mu.Lock()
		batch := c.pending
		c.pending = nil
		if len(batch) == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.run(batch)
	}
}

// run commits batch in one transaction. If a call fails, the transaction is
// rolled back, that call is answered on its own, and the rest run again.
// If the commit fails for lack of space, each call runs on its own: a
// smaller transaction needs fewer new pages, and each one that commits
// frees pages for the next (a GC pass deleting repository by repository).
func (c *committer) run(batch []*commitCall) {
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

// tx runs fn in a write transaction after topping up the metadata reserve,
// and marks a failure for lack of space as ErrStorageFull.
func (c *committer) tx(fn func(*bolt.Tx) error) error {
	return full(c.db.Update(func(tx *bolt.Tx) error {
		if c.reserve != nil {
			c.reserve.ensure(tx)
		}
		return fn(tx)
	}))
}
