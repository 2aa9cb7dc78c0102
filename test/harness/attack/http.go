package attack

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
)

// HTTPHolders are HTTP/1.1 requests whose body never comes, each on a
// connection of its own.
type HTTPHolders struct {
	// Sent counts the holders that sent their headers.
	Sent int
	// DialsFailed counts the connections refused, or not open within
	// dialTimeout.
	DialsFailed int

	conns  []net.Conn
	open   atomic.Int64
	closed sync.WaitGroup
}

// HoldHTTP opens perAddr connections from each of addrs addresses
// (CrowdIP) to the HTTP port httpAddr and sends on each the headers of a
// client-streaming SayHelloToAll call in the Connect protocol, with a
// chunked body that never comes.
func HoldHTTP(ctx context.Context, httpAddr string, addrs, perAddr int) *HTTPHolders {
	h := &HTTPHolders{}
	for a := range addrs {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(CrowdIP(a))}, Timeout: dialTimeout}
		for range perAddr {
			conn, err := d.DialContext(ctx, "tcp", httpAddr)
			if err != nil {
				h.DialsFailed++
				continue
			}
			h.conns = append(h.conns, conn)
			if _, err := io.WriteString(conn, "POST "+greeterv1.GreeterService_SayHelloToAll_FullMethodName+" HTTP/1.1\r\nHost: greeter\r\n"+
				"Content-Type: application/connect+json\r\nTransfer-Encoding: chunked\r\n\r\n"); err != nil {
				continue
			}
			h.Sent++
			// Whatever the server answers, the holder is held until
			// the server closes its connection.
			h.open.Add(1)
			h.closed.Add(1)
			go func() {
				defer h.closed.Done()
				_, _ = io.Copy(io.Discard, conn)
				h.open.Add(-1)
			}()
		}
	}
	return h
}

// Held counts the holders whose connection the server has not closed.
func (h *HTTPHolders) Held() int { return int(h.open.Load()) }

// Close closes every holder's connection.
func (h *HTTPHolders) Close() {
	for _, c := range h.conns {
		c.Close()
	}
	h.closed.Wait()
}
