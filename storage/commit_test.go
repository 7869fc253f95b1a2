package storage

import (
	"fmt"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestCommitterGathers runs rounds of concurrent writers, then writers
// that come one at a time, then concurrent ones again: every write
// commits, and a lone writer after a crowd is not left waiting for writers
// that never come.
func TestCommitterGathers(t *testing.T) {
	s := newStore(t)
	put := func(key string) {
		t.Helper()
		err := s.commit.update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("test"))
			if err != nil {
				return err
			}
			return b.Put([]byte(key), []byte("1"))
		})
		if err != nil {
			t.Errorf("update(%s) = %v", key, err)
		}
	}
	crowd := func(round int) {
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 20 {
					put(fmt.Sprintf("crowd %d %d %d", round, w, i))
				}
			})
		}
		wg.Wait()
	}
	crowd(0)
	for i := range 40 {
		put(fmt.Sprintf("alone %d", i))
	}
	crowd(1)

	n := 0
	s.metaDB().View(func(tx *bolt.Tx) error {
		n = tx.Bucket([]byte("test")).Stats().KeyN
		return nil
	})
	if want := 2*8*20 + 40; n != want {
		t.Errorf("committed %d writes, want %d", n, want)
	}
}
