package admission

import (
	"net"
	"sync"
)

// Listener limits the connections accepted on l: one beyond
// MaxConnections, or beyond MaxConnectionsPerClient from one IP address, is
// closed at once. Refusing rather than leaving it waiting in the kernel's
// backlog (golang.org/x/net/netutil.LimitListener) tells its client at once,
// so a gRPC client tries another address rather than hang until a slot
// frees, however long a hostile client holds its connections.
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

func (c *Controller) admitConn(conn net.Conn) *trackedConn {
	remote := conn.RemoteAddr().String()
	ip := remote
	if host, _, err := net.SplitHostPort(remote); err == nil {
		ip = host
	}
	c.mu.Lock()
	switch {
	case c.limits.MaxConnections > 0 && len(c.conns) >= c.limits.MaxConnections:
		c.mu.Unlock()
		c.m.ConnectionsRefused.WithLabelValues(LimitMaxConnections).Inc()
		return nil
	case c.limits.MaxConnectionsPerClient > 0 && c.connsByIP[ip] >= c.limits.MaxConnectionsPerClient:
		c.mu.Unlock()
		c.m.ConnectionsRefused.WithLabelValues(LimitMaxConnectionsPerClient).Inc()
		return nil
	}
	tc := &trackedConn{Conn: conn, c: c, ip: ip}
	tc.addr = &remoteAddr{Addr: conn.RemoteAddr(), text: remote, conn: tc}
	c.conns[tc] = struct{}{}
	c.connsByIP[ip]++
	c.m.Connections.Set(float64(len(c.conns)))
	c.mu.Unlock()
	return tc
}

type trackedConn struct {
	net.Conn
	c    *Controller
	ip   string
	addr *remoteAddr
	key  string // the client's, once an RPC has asked (clientKey)
	once sync.Once
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
	t.once.Do(func() {
		t.c.mu.Lock()
		delete(t.c.conns, t)
		if t.c.connsByIP[t.ip]--; t.c.connsByIP[t.ip] <= 0 {
			delete(t.c.connsByIP, t.ip)
		}
		t.c.m.Connections.Set(float64(len(t.c.conns)))
		t.c.mu.Unlock()
	})
	return err
}
