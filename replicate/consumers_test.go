package replicate

import (
	"context"
	"testing"

	"github.com/nora-registry/nora/storage"
)

// TestConsumersInitialSync: a new target needs its initial sync until it
// is recorded as done, across a reopen of the store; removing the target
// drops its queue.
func TestConsumersInitialSync(t *testing.T) {
	ctx := context.Background()
	cfg := storage.Config{Driver: "filesystem", Root: t.TempDir()}
	open := func(targets ...string) (*storage.Store, *consumers) {
		t.Helper()
		st, err := storage.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		c, err := openConsumers(ctx, st, targets)
		if err != nil {
			t.Fatal(err)
		}
		return st, c
	}
	st, c := open("central")
	if !c.needsSync("central") {
		t.Fatal("a new target does not need its initial sync")
	}
	st.Close() // the sync was cut short

	st, c = open("central")
	if !c.needsSync("central") {
		t.Fatal("a target whose initial sync was cut short does not need it after a restart")
	}
	if err := c.synced("central"); err != nil {
		t.Fatal(err)
	}
	st.Close()

	st, c = open("central", "backup")
	if c.needsSync("central") || !c.needsSync("backup") {
		t.Errorf("needsSync after central's sync = %t, backup's = %t; want false, true", c.needsSync("central"), c.needsSync("backup"))
	}
	st.Close()

	st, _ = open()
	defer st.Close()
	if _, err := st.Events(ctx, "central", 1); err == nil {
		t.Error("a target no longer configured kept its queue")
	}
}
