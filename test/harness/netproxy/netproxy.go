// Package netproxy is a TCP proxy for fault tests: it forwards connections
// to a target until told to fail them, silently (a black hole: a peer whose
// machine died, a partition) or loudly (a TCP reset).
package netproxy

import (
	"net"
	"sync"
	"sync/atomic"
)

// Proxy forwards TCP connections from Addr to a target.
type Proxy struct {
	// Addr is the loopback address the proxy listens on.
	Addr   string
	lis    net.Listener
	target string
	dark   atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

// New listens on loopback and forwards every connection to target.
func New(target string) (*Proxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: lis.Addr().String(), lis: lis, target: target}
	go p.serve()
	return p, nil
}

func (p *Proxy) serve() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.pipe(s, c)
		go p.pipe(c, s)
	}
}

// pipe copies from src to dst until the black hole, then swallows what src
// sends (so neither side sees an error or a close).
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.dark.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil && !p.dark.Load() {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Blackhole stops forwarding in both directions and closes nothing, so the
// peers see a connection that is open but silent.
func (p *Proxy) Blackhole() { p.dark.Store(true) }

// Reset closes every connection with a TCP RST (SO_LINGER 0), as the
// kernel does for a killed process that left data unread: no GOAWAY, no
// orderly close.
func (p *Proxy) Reset() {
	p.dark.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
}

// Close closes the listener and every connection.
func (p *Proxy) Close() {
	p.lis.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}
