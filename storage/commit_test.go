package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"testing"
	"time"

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

// TestCommitLoneWriterInline: a writer that finds no batch running commits
// in its own goroutine.
func TestCommitLoneWriterInline(t *testing.T) {
	s := newStore(t)
	var stack []byte
	err := s.commit.update(func(tx *bolt.Tx) error {
		stack = make([]byte, 64<<10)
		stack = stack[:runtime.Stack(stack, false)]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(stack, []byte("storage.TestCommitLoneWriterInline(")) {
		t.Errorf("the write ran in another goroutine:\n%s", stack)
	}
}

// TestCommitPanicStops: a write that panics stops the process, even when
// the goroutine that commits it recovers (net/http recovers a handler's
// panic): recovered, it would leave the committer running with nobody to
// answer later writers.
func TestCommitPanicStops(t *testing.T) {
	const env = "NORA_TEST_COMMIT_PANIC"
	if os.Getenv(env) != "" {
		s := newStore(t)
		func() {
			defer func() { recover() }()
			s.commit.update(func(*bolt.Tx) error { panic("a write's bug") })
		}()
		done := make(chan error)
		go func() { done <- s.commit.update(func(*bolt.Tx) error { return nil }) }()
		select {
		case <-done:
			fmt.Println("the committer answered after a panic")
		case <-time.After(10 * time.Second):
			fmt.Println("the committer is stuck after a panic")
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestCommitPanicStops$")
	// The child's store goes in a directory of this test's: the panic
	// stops the child before its own clean-up runs.
	cmd.Env = append(os.Environ(), env+"=1", "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !bytes.Contains(out, []byte("panic: a write's bug")) {
		t.Errorf("a panicking write: %v, want the process stopped by the panic; output:\n%s", err, out)
	}
}
