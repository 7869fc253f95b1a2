package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// The event log: while RecordEvents has consumers, every manifest push,
// manifest delete and tag delete made through the registry's API (and
// tags deleted by retention rules) writes an Event in the transaction
// that makes the change, so no crash loses an event that happened or
// records one that did not. Each consumer (a replication target) reads
// the events after its own cursor, kept in the metadata too, and events
// every consumer has passed are deleted. What a pull-through cache stores
// and what GC collects are not events.
//
//	events   sequence (8 bytes, big-endian) → JSON Event
//	cursors  consumer name → last sequence it has handled
var (
	bucketEvents  = []byte("events")
	bucketCursors = []byte("cursors")
)

// EventKind says what an Event changed.
type EventKind string

const (
	// EventPush: manifest Digest was stored in Repo, under Tags.
	EventPush EventKind = "push"
	// EventDeleteTag: Tags were deleted from Repo; Digest is what they
	// named.
	EventDeleteTag EventKind = "delete_tag"
	// EventDeleteManifest: manifest Digest was deleted from Repo, with
	// every tag naming it.
	EventDeleteManifest EventKind = "delete_manifest"
)

// Event is one change to a repository, in the order changes committed.
type Event struct {
	Seq    uint64        `json:"-"`
	Kind   EventKind     `json:"kind"`
	Repo   string        `json:"repo"`
	Digest digest.Digest `json:"digest"`
	Tags   []string      `json:"tags,omitempty"`
	Time   time.Time     `json:"time"`
}

// eventLog is the Store's switch and wake-up for the event log.
type eventLog struct {
	on      atomic.Bool
	mu      sync.Mutex
	changed chan struct{} // closed, and replaced, when events were added
}

// RecordEvents starts recording events for consumers, or stops with
// none. Cursors of consumers not named are deleted, with the events only
// they still needed. It returns the consumers that had no cursor: they
// start at the current end of the log, and must catch up on what is
// already stored by other means.
func (s *Store) RecordEvents(consumers []string) (fresh []string, err error) {
	if s.hasCursorsOf(consumers) {
		// A restart with the same consumers, or none as before: nothing
		// to write, so no sync at start.
		s.events.on.Store(len(consumers) > 0)
		return nil, nil
	}
	err = s.commit.update(func(tx *bolt.Tx) error {
		fresh = nil
		events, err := tx.CreateBucketIfNotExists(bucketEvents)
		if err != nil {
			return err
		}
		cursors, err := tx.CreateBucketIfNotExists(bucketCursors)
		if err != nil {
			return err
		}
		var gone [][]byte
		cursors.ForEach(func(k, _ []byte) error {
			if !slices.Contains(consumers, string(k)) {
				gone = append(gone, slices.Clone(k))
			}
			return nil
		})
		for _, k := range gone {
			if err := cursors.Delete(k); err != nil {
				return err
			}
		}
		for _, c := range consumers {
			if cursors.Get([]byte(c)) == nil {
				fresh = append(fresh, c)
				if err := cursors.Put([]byte(c), seqKey(events.Sequence())); err != nil {
					return err
				}
			}
		}
		return pruneEvents(events, cursors)
	})
	if err == nil {
		s.events.on.Store(len(consumers) > 0)
	}
	return fresh, err
}

// hasCursorsOf reports whether the consumers with a cursor are exactly
// consumers.
func (s *Store) hasCursorsOf(consumers []string) bool {
	same := true
	s.view(func(tx *bolt.Tx) error {
		cursors := tx.Bucket(bucketCursors)
		if cursors == nil {
			same = len(consumers) == 0
			return nil
		}
		n := 0
		cursors.ForEach(func(k, _ []byte) error {
			n++
			same = same && slices.Contains(consumers, string(k))
			return nil
		})
		same = same && n == len(consumers)
		return nil
	})
	return same
}

// Events returns up to max events after consumer's cursor, oldest first.
func (s *Store) Events(ctx context.Context, consumer string, max int) ([]Event, error) {
	var out []Event
	err := s.view(func(tx *bolt.Tx) error {
		events, cursors := tx.Bucket(bucketEvents), tx.Bucket(bucketCursors)
		if events == nil || cursors == nil || cursors.Get([]byte(consumer)) == nil {
			return fmt.Errorf("storage: no event cursor for %q", consumer)
		}
		c := events.Cursor()
		for k, v := c.Seek(seqKey(seqOf(cursors.Get([]byte(consumer))) + 1)); k != nil && len(out) < max; k, v = c.Next() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("storage: event %d: %w", seqOf(k), err)
			}
			e.Seq = seqOf(k)
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// AckEvents moves consumer's cursor to seq: it has handled every event up
// to seq. Events no consumer needs any more are deleted.
func (s *Store) AckEvents(ctx context.Context, consumer string, seq uint64) error {
	return s.commit.update(func(tx *bolt.Tx) error {
		events, cursors := tx.Bucket(bucketEvents), tx.Bucket(bucketCursors)
		if events == nil || cursors == nil || cursors.Get([]byte(consumer)) == nil {
			return fmt.Errorf("storage: no event cursor for %q", consumer)
		}
		if seq <= seqOf(cursors.Get([]byte(consumer))) {
			return nil
		}
		if err := cursors.Put([]byte(consumer), seqKey(seq)); err != nil {
			return err
		}
		return pruneEvents(events, cursors)
	})
}

// EventBacklog returns how many events consumer has yet to handle and
// when the oldest of them happened (zero with none).
func (s *Store) EventBacklog(consumer string) (n uint64, oldest time.Time, err error) {
	evs, err := s.Events(context.Background(), consumer, 1)
	if err != nil || len(evs) == 0 {
		return 0, time.Time{}, err
	}
	s.view(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketEvents).Sequence() - evs[0].Seq + 1
		return nil
	})
	return n, evs[0].Time, nil
}

// EventsAdded returns a channel closed at the next event recorded.
func (s *Store) EventsAdded() <-chan struct{} {
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	if s.events.changed == nil {
		s.events.changed = make(chan struct{})
	}
	return s.events.changed
}

// notifyEvents wakes the consumers waiting in EventsAdded.
func (s *Store) notifyEvents() {
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	if s.events.changed != nil {
		close(s.events.changed)
		s.events.changed = nil
	}
}

// recording reports whether changes write events.
func (s *Store) recording() bool { return s.events.on.Load() }

// update is commit.update for a change that may add events: it wakes the
// consumers once the change committed.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	err := s.commit.update(fn)
	if err == nil && s.recording() {
		s.notifyEvents()
	}
	return err
}

// addEvent writes e to the log in tx, when events are recorded.
func (s *Store) addEvent(tx *bolt.Tx, e Event) error {
	if !s.recording() {
		return nil
	}
	events := tx.Bucket(bucketEvents)
	if events == nil {
		return nil
	}
	seq, err := events.NextSequence()
	if err != nil {
		return err
	}
	e.Time = time.Now().UTC()
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return events.Put(seqKey(seq), v)
}

// pruneEvents deletes the events every cursor has passed, all of them
// when there are no cursors.
func pruneEvents(events, cursors *bolt.Bucket) error {
	upTo := events.Sequence()
	cursors.ForEach(func(_, v []byte) error {
		upTo = min(upTo, seqOf(v))
		return nil
	})
	c := events.Cursor()
	for k, _ := c.First(); k != nil && seqOf(k) <= upTo; k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func seqOf(k []byte) uint64 {
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}
