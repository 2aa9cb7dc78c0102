package admission

import (
	"net"
	"sync/atomic"
	"time"
)

// Listener limits the connections accepted on l. At MaxConnections, or at
// MaxConnectionsPerClient from one IP address, a new connection takes the
// place of an idle one (idlest); with none idle, it is closed at once.
// Refusing rather than leaving it waiting in the kernel's backlog
// (golang.org/x/net/netutil.LimitListener) tells its client at once, so a
// gRPC client tries another address rather than hang until a slot frees.
func (c *Controller) Listener(l net.Listener) net.Listener { return &listener{Listener: l, c: c} }

type listener struct {
	net.Listener
	c *Controller
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if tc := l.c.admitConn(conn); tc != nil {
			return tc, nil
		}
		conn.Close()
	}
}

// minIdle is how long a connection must have had no RPC in flight before a
// newcomer may take its place: a client that has just connected is about to
// send its first RPC.
const minIdle = time.Second

func (c *Controller) admitConn(conn net.Conn) *trackedConn {
	remote := conn.RemoteAddr().String()
	ip := remote
	if host, _, err := net.SplitHostPort(remote); err == nil {
		ip = host
	}
	var evicted *trackedConn
	c.mu.Lock()
	switch limit := c.fullLimit(ip); limit {
	case "":
	default:
		if evicted = c.idlest(ip, limit == LimitMaxConnectionsPerClient); evicted == nil {
			c.mu.Unlock()
			c.events.connRefused(limit)
			return nil
		}
		c.forget(evicted)
		c.events.connEvicted(limit)
	}
	tc := &trackedConn{Conn: conn, c: c, ip: ip, idleSince: c.now()}
	tc.addr = &remoteAddr{Addr: conn.RemoteAddr(), text: remote, conn: tc}
	c.conns[tc] = struct{}{}
	c.connsByIP[ip]++
	c.m.Connections.Set(float64(len(c.conns)))
	c.mu.Unlock()
	if evicted != nil {
		// Idle: no RPC is lost, and a gRPC client reconnects when it next
		// needs the connection.
		evicted.goAwayAndClose()
	}
	return tc
}

// fullLimit is the connection limit a new connection from ip would exceed,
// "" if none. Past the hard memory limit (HardLimitPercent of
// MaxRPCMemory, where every RPC is refused) the count may not grow either:
// what a connection holds is part of the memory measured, and the hard
// limit is what a deployment's memory arithmetic counts on (test/deploycheck),
// so connections accepted there only take an idle one's place. Called
// with c.mu held.
func (c *Controller) fullLimit(ip string) string {
	l := c.limits
	switch {
	case l.MaxConnectionsPerClient > 0 && c.connsByIP[ip] >= l.MaxConnectionsPerClient:
		return LimitMaxConnectionsPerClient
	case l.MaxConnections > 0 && len(c.conns) >= l.MaxConnections:
		return LimitMaxConnections
	case l.MaxRPCMemory > 0 && c.usage() > l.MaxRPCMemory*HardLimitPercent/100:
		return LimitMaxRPCMemory
	}
	return ""
}

// idlest is the connection a newcomer from ip may take the place of, from
// ip alone when sameIP, else from the address holding the most
// connections: one with no RPC in flight for minIdle at least, or one
// whose every RPC still waits for its request with none started for
// minIdle (a holder: a well-behaved client's request comes with its
// headers); the one idle or holding longest among them. Failing those,
// at the server's limits, one with no RPC in flight however recent, from
// an address holding at least two more than ip: a crowd that dials faster
// than minIdle would otherwise refuse every newcomer for as long as it
// dials, while the address it takes from keeps at least as many as ip
// has after. nil if none. Called with c.mu held.
func (c *Controller) idlest(ip string, sameIP bool) *trackedConn {
	cutoff := c.now().Add(-minIdle)
	var (
		best, fresh           *trackedConn
		bestSince, freshSince time.Time
	)
	// better reports whether tc, idle or holding since since, is to go
	// before cur, since curSince.
	better := func(tc *trackedConn, since time.Time, cur *trackedConn, curSince time.Time) bool {
		if cur == nil {
			return true
		}
		held, curHeld := c.connsByIP[tc.ip], c.connsByIP[cur.ip]
		return held > curHeld || (held == curHeld && since.Before(curSince))
	}
	for tc := range c.conns {
		if sameIP && tc.ip != ip {
			continue
		}
		switch {
		case tc.calls == 0 && !tc.idleSince.After(cutoff):
			if better(tc, tc.idleSince, best, bestSince) {
				best, bestSince = tc, tc.idleSince
			}
		case tc.calls > 0 && int64(tc.calls) == tc.waiting.Load() && !tc.lastCall.After(cutoff):
			if better(tc, tc.lastCall, best, bestSince) {
				best, bestSince = tc, tc.lastCall
			}
		case best == nil && !sameIP && tc.calls == 0 && c.connsByIP[tc.ip] >= c.connsByIP[ip]+2:
			if better(tc, tc.idleSince, fresh, freshSince) {
				fresh, freshSince = tc, tc.idleSince
			}
		}
	}
	if best == nil {
		return fresh
	}
	return best
}

// forget stops counting tc, once. Called with c.mu held.
func (c *Controller) forget(tc *trackedConn) {
	if tc.gone {
		return
	}
	tc.gone = true
	delete(c.conns, tc)
	if c.connsByIP[tc.ip]--; c.connsByIP[tc.ip] <= 0 {
		delete(c.connsByIP, tc.ip)
	}
	c.m.Connections.Set(float64(len(c.conns)))
}

type trackedConn struct {
	net.Conn
	c    *Controller
	ip   string
	addr *remoteAddr
	// out follows what grpc-go writes to it, if it serves the gRPC port
	// (Credentials); set before its first RPC. wrapped is the connection
	// grpc-go writes to, for a GOAWAY (goAwayAndClose).
	out     *outbound
	wrapped atomic.Pointer[outboundConn]
	// waiting counts its RPCs waiting for their first request message.
	waiting atomic.Int64
	// Guarded by c.mu:
	key       string    // the client's, once an RPC has asked (clientKey)
	calls     int       // RPCs in flight, refused ones included
	idleSince time.Time // when calls last fell to 0, or it was accepted
	lastCall  time.Time // when its newest RPC started
	gone      bool      // no longer counted (forget)
}

// RemoteAddr is the connection's remote address, whose String is computed
// once: grpc-go gives it to every RPC on the connection as its peer.Addr,
// which the access log, the rate limiter and admission read per RPC:
// formatting a *net.TCPAddr per read showed in profiles
// (docs/performance.md, "Figures behind the code").
func (t *trackedConn) RemoteAddr() net.Addr { return t.addr }

// remoteAddr is a trackedConn's remote address: its text formatted once,
// and the connection it belongs to, so that TapHandle finds an RPC's
// connection without a lookup.
type remoteAddr struct {
	net.Addr
	text string
	conn *trackedConn
}

func (a *remoteAddr) String() string { return a.text }

func (t *trackedConn) Close() error {
	err := t.Conn.Close()
	t.c.mu.Lock()
	t.c.forget(t)
	t.c.mu.Unlock()
	return err
}
