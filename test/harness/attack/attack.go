// Package attack drives hostile clients against a server on loopback —
// stuck readers, crowds of streams that never send their request, idle
// connections, held health calls, HTTP/1.1 requests whose body never
// comes — and the well-behaved clients whose calls and probes tell whether
// the server withstood them. test/e2e/overload asserts on what they
// measure and `make bench`'s overload table reports it, the greeter beside
// the bare servers: one copy of each attack, so that both measure the same
// thing.
//
// Each role dials from a loopback address of its own (every address of
// 127.0.0.0/8 is loopback on Linux), since a server keys its per-client
// limits by IP.
package attack

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/acme/greeter/test/harness/h2client"
)

// The addresses of the roles.
const (
	// WellBehavedIP is the well-behaved client's.
	WellBehavedIP = "127.0.0.1"
	// AttackerIP is an attack's from one address.
	AttackerIP = "127.0.0.2"
	// ProbeIP is the health probes'.
	ProbeIP = "127.0.0.3"
	// NewcomerIP is a client's that arrives during an attack.
	NewcomerIP = "127.0.0.4"
)

// CrowdIP is the address of a crowd's client i, from 0: 127.0.1.1 on, so
// that a crowd may have up to 254 addresses.
func CrowdIP(i int) string { return fmt.Sprintf("127.0.1.%d", i+1) }

// dialTimeout bounds each connection an attack opens: a server that
// neither accepts nor refuses is counted as refusing.
const dialTimeout = 5 * time.Second

// DialFrom is a gRPC client of addr whose connections come from ip.
func DialFrom(ip, addr string) (*grpc.ClientConn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }))
}

// Shape is how an attack spreads over clients: Addrs addresses (AttackerIP
// alone, else Addrs CrowdIPs), ConnsPerAddr connections from each, and
// StreamsPerConn streams on each connection.
type Shape struct {
	Addrs, ConnsPerAddr, StreamsPerConn int
}

// IP is the address of the shape's client a.
func (s Shape) IP(a int) string {
	if s.Addrs == 1 {
		return AttackerIP
	}
	return CrowdIP(a)
}

// Conns is how many connections the shape opens.
func (s Shape) Conns() int { return s.Addrs * s.ConnsPerAddr }

// Streams is how many streams the shape opens.
func (s Shape) Streams() int { return s.Conns() * s.StreamsPerConn }

// Crowd is an attack's HTTP/2 connections, and what became of their
// streams.
type Crowd struct {
	// Opened counts the streams opened.
	Opened int
	// DialsFailed counts the connections refused, or not ready within
	// dialTimeout.
	DialsFailed int
	// Took is how long opening the attack took.
	Took time.Duration

	mu    sync.Mutex
	conns []*h2client.Conn
}

func (c *Crowd) add(conn *h2client.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conns = append(c.conns, conn)
}

// Conns are the crowd's open connections.
func (c *Crowd) Conns() []*h2client.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*h2client.Conn(nil), c.conns...)
}

// Ends counts how the server ended the crowd's streams so far: by gRPC
// status name, or "RST_STREAM <code>".
func (c *Crowd) Ends() map[string]int {
	out := map[string]int{}
	for _, conn := range c.Conns() {
		for _, e := range conn.Ends() {
			switch {
			case e.Reset:
				out[ResetName(e.Code)]++
			case e.Status >= 0:
				out[codes.Code(e.Status).String()]++
			default:
				out["ended without status"]++
			}
		}
	}
	return out
}

// ResetPrefix begins the name Ends gives a stream reset.
const ResetPrefix = "RST_STREAM "

// ResetName is how Ends names a stream reset with code.
func ResetName(code http2.ErrCode) string { return ResetPrefix + code.String() }

// Ended counts the streams the server has ended.
func (c *Crowd) Ended() int {
	n := 0
	for _, conn := range c.Conns() {
		n += conn.Ended()
	}
	return n
}

// Held counts the streams the server has not ended yet.
func (c *Crowd) Held() int { return c.Opened - c.Ended() }

// Close closes every connection of the crowd.
func (c *Crowd) Close() {
	for _, conn := range c.Conns() {
		conn.Close()
	}
}
