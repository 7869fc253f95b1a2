package cmd

import (
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestLimitListener: connections over the per-client cap are closed on
// accept, another address still gets in, and closing a connection twice
// gives back one slot, not two.
func TestLimitListener(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newLimitListener(tcp.(*net.TCPListener), 3, 2, zerolog.Nop())
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	// dial connects from ip. A connection over a cap may be reset before
	// the handshake ends: then it returns nil.
	dial := func(ip net.IP) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
		c, err := d.Dial("tcp", tcp.Addr().String())
		if err != nil {
			return nil
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	next := func() net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			return c
		case <-time.After(300 * time.Millisecond):
			return nil
		}
	}
	a, b := net.IPv4(127, 0, 0, 2), net.IPv4(127, 0, 0, 3)
	dial(a)
	dial(a)
	first, second := next(), next()
	if first == nil || second == nil {
		t.Fatal("the first two connections from one address were not accepted")
	}
	over := dial(a)
	if c := next(); c != nil {
		t.Fatalf("third connection from %v accepted, want it closed (max_connections_per_client = 2)", a)
	}
	if over != nil {
		over.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := over.Read(make([]byte, 1)); err == nil {
			t.Error("connection over the cap was not closed")
		}
	}
	dial(b)
	if next() == nil {
		t.Fatalf("connection from %v refused, want accepted", b)
	}

	first.Close()
	first.Close()
	dial(a)
	if next() == nil {
		t.Fatal("connection after a close refused, want the slot back")
	}
	dial(a)
	if c := next(); c != nil {
		t.Fatal("a connection closed twice gave back two slots")
	}
}
