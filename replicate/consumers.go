package replicate

import (
	"context"
	"sync"
)

// consumers keeps the store's event consumers: one per push target and,
// until a new target's initial sync has finished, a marker consumer
// "initial-sync:<name>". The marker is kept in the store like any cursor,
// so a sync cut short by a stop or a crash runs again at the next start.
type consumers struct {
	events EventLog
	mu     sync.Mutex
	names  []string
	// pending are the targets whose initial sync has not finished.
	pending map[string]bool
}

func syncMarker(target string) string { return "initial-sync:" + target }

// openConsumers records events for targets, dropping every other
// consumer's cursor, and tells which targets need an initial sync: those
// new to the store, and those whose sync did not finish.
func openConsumers(ctx context.Context, events EventLog, targets []string) (*consumers, error) {
	c := &consumers{events: events, names: targets, pending: map[string]bool{}}
	for _, t := range targets {
		_, noCursor := events.Events(ctx, t, 0)
		_, noMarker := events.Events(ctx, syncMarker(t), 0)
		c.pending[t] = noCursor != nil || noMarker == nil
	}
	return c, c.record()
}

func (c *consumers) record() error {
	names := append([]string(nil), c.names...)
	for _, t := range c.names {
		if c.pending[t] {
			names = append(names, syncMarker(t))
		}
	}
	_, err := c.events.RecordEvents(names)
	return err
}

// needsSync reports whether target's initial sync is still to do.
func (c *consumers) needsSync(target string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending[target]
}

// synced records that target's initial sync finished.
func (c *consumers) synced(target string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending[target] = false
	return c.record()
}
