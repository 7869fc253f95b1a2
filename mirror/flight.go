package mirror

import "sync"

// group shares one run of a function among concurrent callers with the
// same key, as golang.org/x/sync/singleflight with a string result: the
// fetch's outcome is in the Store, so callers only need its error and
// how it went.
type group struct {
	mu      sync.Mutex
	flights map[string]*flight
}

type flight struct {
	done chan struct{}
	val  string
	err  error
}

// do runs fn once for all callers of key that arrive while it runs. The
// first caller runs fn and gets leader true; the others wait for it to
// return, then get its result.
func (g *group) do(key string, fn func() (string, error)) (val string, leader bool, err error) {
	g.mu.Lock()
	if f, ok := g.flights[key]; ok {
		g.mu.Unlock()
		<-f.done
		return f.val, false, f.err
	}
	if g.flights == nil {
		g.flights = map[string]*flight{}
	}
	f := &flight{done: make(chan struct{})}
	g.flights[key] = f
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.flights, key)
		g.mu.Unlock()
		close(f.done)
	}()
	f.val, f.err = fn()
	return f.val, true, f.err
}
