package replicate

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Replicator runs a Config's continuous replication while the registry
// serves: a worker per push target, a poller per pull source.
type Replicator struct {
	peers  []*peer
	events EventLog
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start records events for cfg's push targets (and for no one else: the
// queues of targets no longer configured are dropped), then starts the
// workers. A target new to the store, or whose initial sync did not
// finish, first gets everything that matches. local is this registry's
// API (see Local); reg, if not nil, gets the metrics. Stop the
// Replicator before closing the store.
func Start(ctx context.Context, cfg Config, events EventLog, local Endpoint, reg prometheus.Registerer, log zerolog.Logger) (*Replicator, error) {
	var names []string
	for _, p := range cfg.Push {
		names = append(names, p.Name)
	}
	cons, err := openConsumers(ctx, events, names)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(reg, events, names)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Replicator{events: events, cancel: cancel}
	var runs []func(context.Context)
	for _, c := range cfg.Push {
		pe, err := newPeer(c.Remote, "push", log, m)
		if err != nil {
			cancel()
			return nil, err
		}
		p := &pusher{peer: pe, deletes: c.ReplicatesDeletes(), events: events, local: local, consumers: cons}
		r.peers, runs = append(r.peers, pe), append(runs, p.run)
	}
	for _, c := range cfg.Pull {
		pe, err := newPeer(c.Remote, "pull", log, m)
		if err != nil {
			cancel()
			return nil, err
		}
		p := &puller{peer: pe, local: local, newest: c.Newest, platforms: c.platforms(), interval: c.PollInterval()}
		r.peers, runs = append(r.peers, pe), append(runs, p.run)
	}
	for _, p := range r.peers {
		p.log.Info().Str("kind", p.kind).Str("url", p.cfg.URL).Msg("replicating")
	}
	for _, run := range runs {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			run(ctx)
		}()
	}
	return r, nil
}

// Stop stops every worker and waits for them: a copy in flight is
// abandoned, and its events stay queued for the next start.
func (r *Replicator) Stop() {
	r.cancel()
	r.wg.Wait()
}

// Status returns each remote's status, in configuration order, with the
// queues measured now.
func (r *Replicator) Status() []RemoteStatus {
	var out []RemoteStatus
	for _, p := range r.peers {
		st := p.status.get()
		if p.kind == "push" {
			st.Queued, st.Lag = QueueOf(r.events, p.cfg.Name)
		}
		out = append(out, st)
	}
	return out
}
