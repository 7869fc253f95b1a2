package replicate

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Local serves h, this registry's API, as a replication endpoint inside
// the process: each connection is an in-memory pipe, so nothing outside
// the process can reach h, which asks for no credentials. Bodies stream
// through the pipe as through a socket. stop ends the server.
func Local(h http.Handler) (e Endpoint, stop func()) {
	ln := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	tr := &http.Transport{
		DialContext:         ln.dial,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     time.Minute,
	}
	reg, _ := name.NewRegistry("localhost", name.Insecure)
	return Endpoint{Registry: reg, Transport: tr, Auth: authn.Anonymous}, func() {
		tr.CloseIdleConnections()
		srv.Close()
	}
}

// pipeListener hands the server one end of each pipe dialed.
type pipeListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

var errListenerClosed = errors.New("in-process listener closed")

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, errListenerClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Accept returns the server end of the next pipe dialed.
func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, errListenerClosed
	}
}

// Close stops Accept and dial.
func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is a placeholder: pipes have no address.
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "in-process" }
