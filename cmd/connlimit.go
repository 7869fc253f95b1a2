package cmd

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// limitListener caps the connections it has accepted and not yet closed,
// in total and per client IP address. A connection over a cap is closed
// the moment it is accepted, before any byte of it is read, so clients
// that hold connections open cannot starve the process of file
// descriptors, nor one client take the connections of everyone else.
type limitListener struct {
	*net.TCPListener
	max, perClient int
	log            zerolog.Logger

	mu      sync.Mutex
	open    int
	byAddr  map[netip.Addr]int
	lastLog time.Time

	refused prometheus.Counter // nil without metrics
}

// fdReserve is how many open files are kept for the store, logs and the
// admin socket when max_connections is lowered to fit the process limit.
const fdReserve = 256

// newLimitListener wraps ln with the caps of [server]. A max that the
// process's open-file limit cannot hold is lowered, with a warning: over
// it, accept fails for everyone and the store cannot open its files.
func newLimitListener(ln *net.TCPListener, total, perClient int, log zerolog.Logger) *limitListener {
	if lim := openFileLimit(); lim > 0 && total > lim-fdReserve {
		fit := max(lim-fdReserve, lim/2)
		log.Warn().Int("max_connections", total).Int("open_file_limit", lim).Int("using", fit).
			Msg("server.max_connections is more than the open-file limit (ulimit -n) leaves room for; using less")
		total = fit
	}
	return &limitListener{TCPListener: ln, max: total, perClient: min(perClient, total), log: log, byAddr: make(map[netip.Addr]int)}
}

// register exports the number of open connections and of refused ones.
func (l *limitListener) register(reg prometheus.Registerer) error {
	l.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nora_http_connections_refused_total",
		Help: "Connections closed on accept because server.max_connections or server.max_connections_per_client was reached.",
	})
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "nora_http_connections_open",
		Help: "Client connections open.",
	}, func() float64 {
		l.mu.Lock()
		defer l.mu.Unlock()
		return float64(l.open)
	})
	return errors.Join(reg.Register(l.refused), reg.Register(open))
}

// Accept returns the next connection within the caps; the others are
// closed here and never reach the HTTP server.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.AcceptTCP()
		if err != nil {
			return nil, err
		}
		addr := peerAddr(c)
		if l.admit(addr) {
			return &limitedConn{TCPConn: c, l: l, addr: addr}, nil
		}
		// Linger 0: a reset frees the descriptor at once instead of
		// leaving the socket in TIME_WAIT on this side.
		c.SetLinger(0)
		c.Close()
	}
}

func (l *limitListener) admit(addr netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.max || l.byAddr[addr] >= l.perClient {
		l.refusedLocked(addr)
		return false
	}
	l.open++
	l.byAddr[addr]++
	return true
}

// refusedLocked counts a refused connection and logs at most one line a
// minute, so a flood cannot flood the log too.
func (l *limitListener) refusedLocked(addr netip.Addr) {
	if l.refused != nil {
		l.refused.Inc()
	}
	if now := time.Now(); now.Sub(l.lastLog) >= time.Minute {
		l.lastLog = now
		l.log.Warn().Str("client", addr.String()).Int("open", l.open).Int("from_client", l.byAddr[addr]).
			Int("max_connections", l.max).Int("max_connections_per_client", l.perClient).
			Msg("connection refused: connection limit reached (further refusals are counted in nora_http_connections_refused_total)")
	}
}

func (l *limitListener) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if n := l.byAddr[addr] - 1; n > 0 {
		l.byAddr[addr] = n
	} else {
		delete(l.byAddr, addr)
	}
}

// peerAddr is the client's IP address; IPv4-mapped IPv6 addresses count
// as the IPv4 address they are.
func peerAddr(c *net.TCPConn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// limitedConn gives its slot back when closed. It embeds *net.TCPConn so
// net/http still finds ReadFrom (sendfile for blob downloads) and
// CloseWrite (a clean close after refusing a request body).
type limitedConn struct {
	*net.TCPConn
	l      *limitListener
	addr   netip.Addr
	closed atomic.Bool
}

// Close closes the connection and releases its slot, once however often
// it is called.
func (c *limitedConn) Close() error {
	err := c.TCPConn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.addr)
	}
	return err
}
