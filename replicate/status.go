package replicate

import (
	"sync"
	"time"
)

// RemoteStatus is what a push target or pull source has done lately, as
// `registry replicate status` shows it.
type RemoteStatus struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // "push" or "pull"
	URL  string `json:"url"`
	// LastRun is when the remote last started a copy: a batch of events
	// or a poll.
	LastRun time.Time `json:"last_run,omitzero"`
	// LastSuccess is when a batch was last delivered or a poll ended
	// without a failure.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// Queued is how many events a push target has yet to handle, and
	// Lag how long ago the oldest of them happened.
	Queued uint64        `json:"queued"`
	Lag    time.Duration `json:"lag_ns"`
	// Items and Bytes count what was copied or deleted since start.
	Items int64 `json:"items"`
	Bytes int64 `json:"bytes"`
	// LastError is the latest failure, cleared by the next success.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// tracker keeps a RemoteStatus up to date for one remote.
type tracker struct {
	mu sync.Mutex
	st RemoteStatus
}

func (t *tracker) update(f func(*RemoteStatus)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(&t.st)
}

func (t *tracker) get() RemoteStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

// QueueOf returns how many events target has yet to handle and the age
// of the oldest, zero when it is up to date or has no queue.
func QueueOf(events EventLog, target string) (uint64, time.Duration) {
	n, oldest, err := events.EventBacklog(target)
	if err != nil || oldest.IsZero() {
		return n, 0
	}
	return n, time.Since(oldest)
}
