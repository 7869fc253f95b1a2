//go:build bench && linux

package main

import (
	"context"
	"io"
	"net"
	"testing"

	"golang.org/x/time/rate"
)

// benchUplink is a TCP proxy to an upstream that sends the upstream's
// answers at most rate bytes a second per connection, as a real uplink
// would: a cold pull through a cache is then compared with a direct pull
// over the same link, not with a page-cache read over loopback.
type benchUplink struct {
	ln   net.Listener
	addr string
}

func startBenchUplink(t *testing.T, upstream string, bytesPerSec int) *benchUplink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &benchUplink{ln: ln, addr: ln.Addr().String()}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go u.serve(c, upstream, bytesPerSec)
		}
	}()
	return u
}

func (u *benchUplink) serve(c net.Conn, upstream string, bytesPerSec int) {
	defer c.Close()
	up, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer up.Close()
	go func() {
		io.Copy(up, c)
		up.(*net.TCPConn).CloseWrite()
	}()
	const chunk = 64 << 10
	lim := rate.NewLimiter(rate.Limit(bytesPerSec), chunk)
	buf := make([]byte, chunk)
	for {
		n, err := up.Read(buf)
		if n > 0 {
			lim.WaitN(context.Background(), n)
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
