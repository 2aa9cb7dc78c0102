package web

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// writeWatch closes a connection one of whose writes has waited longer than
// the send-stall timeout on a client that reads nothing: what
// http.HTTP2Config.WriteByteTimeout does, and without which a stalled
// HTTP/2 client would hold every call on its connection (and net/http's
// goroutines for them) for good, its responses unwritable.
//
// WriteByteTimeout sets the connection's write deadline before every write
// and clears it after, two runtime timer changes per frame, which showed
// in profiles of Connect unary calls (docs/performance.md, "HTTP port").
// Here a write costs an atomic load and two stores: it notes the watch's
// tick, not the time (a clock read costs more, on a VM, than the rest of
// the write's bookkeeping), and one goroutine looks at every connection
// a few times per timeout.
type writeWatch struct {
	timeout time.Duration
	// tick counts the watch's looks; a write notes the one it began
	// after.
	tick    atomic.Int64
	mu      sync.Mutex
	conns   map[*watchedConn]struct{}
	quit    chan struct{}
	stopped sync.Once
	onClose func(remote net.Addr) // told of each connection closed
}

func newWriteWatch(timeout time.Duration, onClose func(net.Addr)) *writeWatch {
	return &writeWatch{timeout: timeout, conns: map[*watchedConn]struct{}{}, quit: make(chan struct{}), onClose: onClose}
}

// listener watches every connection l accepts.
func (w *writeWatch) listener(l net.Listener) net.Listener {
	return &watchedListener{Listener: l, w: w}
}

// stop ends the watch.
func (w *writeWatch) stop() { w.stopped.Do(func() { close(w.quit) }) }

// checkEvery is how often the watch looks: a tenth of the timeout, so a
// stalled connection is closed within 1.1 times it, at most every second.
func (w *writeWatch) checkEvery() time.Duration {
	return min(time.Second, max(w.timeout/10, 10*time.Millisecond))
}

func (w *writeWatch) run() {
	t := time.NewTicker(w.checkEvery())
	defer t.Stop()
	for {
		select {
		case <-w.quit:
			return
		case <-t.C:
			for _, c := range w.stalled(w.tick.Add(1)) {
				c.Conn.Close()
				w.onClose(c.RemoteAddr())
			}
		}
	}
}

// stalled are the connections whose write in progress began more than the
// timeout before tick: a write noted after tick k began at most a look's
// interval after it, so one that is still in progress at tick
// k+1+ceil(timeout/interval) has waited the timeout at least, and at most
// an interval more.
func (w *writeWatch) stalled(tick int64) []*watchedConn {
	every := w.checkEvery()
	looks := int64((w.timeout + every - 1) / every)
	var out []*watchedConn
	w.mu.Lock()
	defer w.mu.Unlock()
	for c := range w.conns {
		// writingSince is the tick a write began after, plus one.
		if s := c.writingSince.Load(); s != 0 && tick-(s-1) >= looks+1 {
			out = append(out, c)
			delete(w.conns, c)
		}
	}
	return out
}

type watchedListener struct {
	net.Listener
	w *writeWatch
}

func (l *watchedListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &watchedConn{Conn: conn, w: l.w}
	l.w.mu.Lock()
	l.w.conns[c] = struct{}{}
	l.w.mu.Unlock()
	return c, nil
}

// watchedConn notes when a write in progress began.
type watchedConn struct {
	net.Conn
	w            *writeWatch
	writingSince atomic.Int64 // the watch's tick when the write began, plus one; 0: not writing
	closed       sync.Once
}

func (c *watchedConn) Write(p []byte) (int, error) {
	c.writingSince.Store(c.w.tick.Load() + 1)
	n, err := c.Conn.Write(p)
	c.writingSince.Store(0)
	return n, err
}

func (c *watchedConn) Close() error {
	c.closed.Do(func() {
		c.w.mu.Lock()
		delete(c.w.conns, c)
		c.w.mu.Unlock()
	})
	return c.Conn.Close()
}
