// Package admission bounds what the server holds for its clients, so that no
// client, however it behaves, can grow the server past its memory budget:
//
//   - RPCs in flight are charged their worst-case memory when they start,
//     before grpc-go gives them a goroutine (a tap handle, grpc.InTapHandle):
//     an RPC that would take the server past Limits.MaxRPCMemory is refused
//     UNAVAILABLE (this replica is full; another may not be), one that
//     would take its client past Limits.MaxRPCMemoryPerClient is refused
//     RESOURCE_EXHAUSTED with a google.rpc.RetryInfo (this client is over
//     its share). Health RPCs are counted apart, by number
//     (Limits.MaxHealthStreams), so that a kubelet probe is never refused
//     because some client holds the RPC budget;
//   - connections beyond Limits.MaxConnections, or beyond
//     Limits.MaxConnectionsPerClient from one IP address, are closed as soon
//     as they are accepted (Listener), so their clients fail over at once;
//   - an RPC whose first request message has not arrived within
//     Limits.FirstMessageTimeout is cancelled (like net/http's
//     ReadHeaderTimeout), and a connection on which an RPC's send has been
//     held up by HTTP/2 flow control for Limits.SendStallTimeout (the client
//     reads nothing) is closed, which frees what grpc-go queued for it.
//
// A client is its mTLS certificate subject, else its IP address, as for the
// rate limit (ratelimit.ClientKey); connections are counted by IP address,
// the only identity known when one is accepted.
package admission

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/acme/greeter/services/greeter/internal/ratelimit"
	"github.com/acme/greeter/services/greeter/internal/rpcmethod"
)

// What an RPC and a connection may cost at most, measured against the real
// binary (docs/reliability.md, test/e2e/overload).
const (
	// RequestOverhead is what an RPC costs beside its request message: the
	// HTTP/2 stream window of received data not yet read (64 KiB, fixed:
	// the server turns off window growth), its goroutine and grpc-go's
	// stream state. An RPC whose client sent HEADERS and nothing else was
	// measured at 12–13 KiB.
	RequestOverhead = 96 << 10
	// ResponseQueue is what an RPC that streams responses may hold queued
	// for a client that reads nothing: grpc-go queues up to 64 KiB of
	// message bytes per stream, and the greeter's smallest greetings
	// (about 20 bytes) cost about 270 bytes of heap each queued: measured
	// 0.94 MiB of heap (1.4 MiB of RSS, garbage included) per stream.
	ResponseQueue = 5 << 18 // 1.25 MiB
	// ConnectionCost is what an open connection costs without its RPCs:
	// measured 18 KiB idle; its read and write buffers (32 KiB each) are
	// taken from pools only while it is busy.
	ConnectionCost = 32 << 10
	// HealthCost is what a health RPC may cost: a small request, and
	// responses sent only when the status changes.
	HealthCost = 32 << 10
)

// Limits are the bounds a Controller enforces. Zero values mean no limit for
// the counts and no timeout for the durations; see the server's options for
// the defaults.
type Limits struct {
	MaxRPCMemory            int64
	MaxRPCMemoryPerClient   int64
	MaxHealthStreams        int
	MaxHealthPerClient      int
	MaxConnections          int
	MaxConnectionsPerClient int
	FirstMessageTimeout     time.Duration
	SendStallTimeout        time.Duration
	// MaxRecvMsgSize is the largest request message, part of every RPC's
	// charge.
	MaxRecvMsgSize int
}

// Metrics are where a Controller counts what it refused and reaped.
type Metrics struct {
	StreamsRefused     *prometheus.CounterVec // by limit
	StreamsReaped      *prometheus.CounterVec // by limit
	ConnectionsRefused *prometheus.CounterVec // by limit
	RPCMemory          prometheus.Gauge       // bytes charged to RPCs in flight
	HealthStreams      prometheus.Gauge
	Connections        prometheus.Gauge
}

// The label values of the metrics: the flag of each limit.
const (
	LimitMaxRPCMemory            = "max-rpc-memory"
	LimitMaxRPCMemoryPerClient   = "max-rpc-memory-per-client"
	LimitMaxHealthStreams        = "max-health-streams"
	LimitMaxConnections          = "max-connections"
	LimitMaxConnectionsPerClient = "max-connections-per-client"
	LimitFirstMessageTimeout     = "first-message-timeout"
	LimitSendStallTimeout        = "send-stall-timeout"
)

// RetryAfter is the delay a client over its share is told to wait
// (RetryInfo): RPCs in flight end on their own schedule, so there is no
// better estimate than "soon".
const RetryAfter = time.Second

// ErrFirstMessageTimeout is the cause of the cancellation of an RPC whose
// request did not arrive in time.
var ErrFirstMessageTimeout = errors.New("no complete request message within the first-message timeout")

var errSendStalled = errors.New("the client read nothing for the send-stall timeout: connection closed")

// Controller enforces Limits. Its zero value is not usable; use New.
type Controller struct {
	limits  Limits
	m       Metrics
	methods map[string]method // by full method name
	now     func() time.Time

	mu        sync.Mutex
	rpcMemory int64
	health    int
	clients   map[string]*clientUse // by ratelimit.ClientKey
	calls     map[*call]struct{}
	conns     map[*trackedConn]struct{}
	connsByIP map[string]int
}

// method is what admission needs to know of a registered method.
type method struct {
	streamsResponses bool
	health           bool // counted apart, by number (Limits.MaxHealthStreams)
}

type clientUse struct {
	memory int64
	health int
}

// call is one admitted RPC.
type call struct {
	key          string
	cost         int64
	health       bool
	start        time.Time
	received     atomic.Bool  // its first request message arrived
	sendingSince atomic.Int64 // UnixNano when a blocked send began, 0 if none
	reaped       atomic.Bool
	released     atomic.Bool
	conn         *trackedConn // nil if the listener is not a Controller's
	ctx          context.Context
	cancel       context.CancelCauseFunc
}

type callKey struct{}

// New returns a Controller enforcing l, counting into m. services are the
// server's registered services (grpc.Server.GetServiceInfo), which tell which
// methods stream responses.
func New(l Limits, m Metrics, services map[string]grpc.ServiceInfo) *Controller {
	c := &Controller{
		limits:    l,
		m:         m,
		methods:   map[string]method{},
		now:       time.Now,
		clients:   map[string]*clientUse{},
		calls:     map[*call]struct{}{},
		conns:     map[*trackedConn]struct{}{},
		connsByIP: map[string]int{},
	}
	for name, info := range services {
		for _, m := range info.Methods {
			c.methods["/"+name+"/"+m.Name] = method{
				streamsResponses: m.IsServerStream,
				health:           rpcmethod.IsHealthService(name),
			}
		}
	}
	return c
}

// cost is what an RPC is charged while in flight: its request, its stream
// window and state, and, if it streams responses, what grpc-go may queue.
func (c *Controller) cost(streamsResponses bool) int64 {
	cost := int64(c.limits.MaxRecvMsgSize) + RequestOverhead
	if streamsResponses {
		cost += ResponseQueue
	}
	return cost
}

// TapHandle admits or refuses an RPC before grpc-go starts its handler; pass
// it to grpc.InTapHandle. grpc-go calls it holding its connection's lock, so
// it never blocks. The context it returns becomes the RPC's: cancelling it
// (the reaper does) ends the RPC's waits for its request and for flow
// control.
func (c *Controller) TapHandle(ctx context.Context, info *tap.Info) (context.Context, error) {
	m, known := c.methods[info.FullMethodName]
	if !known {
		// grpc-go answers UNIMPLEMENTED without a handler: nothing to
		// charge (a newer client calling an older server must not be
		// refused for it).
		return ctx, nil
	}
	cl := &call{health: m.health, start: c.now()}
	if !cl.health {
		cl.cost = c.cost(m.streamsResponses)
	}
	if p, ok := peer.FromContext(ctx); ok {
		if a, ok := p.Addr.(*remoteAddr); ok {
			cl.conn = a.conn
		}
	}

	c.mu.Lock()
	cl.key = c.clientKey(ctx, cl.conn)
	use := c.clients[cl.key]
	if use == nil {
		use = &clientUse{}
	}
	var err error
	switch l := c.limits; {
	case cl.health && l.MaxHealthStreams > 0 && c.health >= l.MaxHealthStreams:
		err = c.refuse(LimitMaxHealthStreams, codes.Unavailable, fmt.Sprintf("greeter: %d health RPCs in flight, the server's limit: retry shortly", c.health))
	case cl.health && l.MaxHealthPerClient > 0 && use.health >= l.MaxHealthPerClient:
		err = c.refuse(LimitMaxHealthStreams, codes.ResourceExhausted, fmt.Sprintf("greeter: this client has %d health RPCs in flight, its limit", use.health))
	case !cl.health && l.MaxRPCMemory > 0 && c.rpcMemory+cl.cost > l.MaxRPCMemory:
		err = c.refuse(LimitMaxRPCMemory, codes.Unavailable, fmt.Sprintf("greeter: the server is at its limit of RPCs in flight (%d KiB of %d KiB); retry, another replica may have room", c.rpcMemory>>10, l.MaxRPCMemory>>10))
	case !cl.health && l.MaxRPCMemoryPerClient > 0 && use.memory+cl.cost > l.MaxRPCMemoryPerClient:
		err = c.refuse(LimitMaxRPCMemoryPerClient, codes.ResourceExhausted, fmt.Sprintf("greeter: this client is at its limit of RPCs in flight (%d KiB of %d KiB); retry after some end", use.memory>>10, l.MaxRPCMemoryPerClient>>10))
	}
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	// Set before the reaper can see the call, which it does once in c.calls.
	cl.ctx, cl.cancel = context.WithCancelCause(ctx)
	if cl.health {
		c.health++
		use.health++
	} else {
		c.rpcMemory += cl.cost
		use.memory += cl.cost
	}
	c.clients[cl.key] = use
	c.calls[cl] = struct{}{}
	c.setGauges()
	c.mu.Unlock()

	// The interceptors release the call when its handler returns; one
	// that ends before its handler starts (reset by the client, reaped
	// waiting for its request) is released by the reaper once its context
	// is done (Run). Not context.AfterFunc: it cost more per RPC than all
	// the rest of the admission together.
	return context.WithValue(cl.ctx, callKey{}, cl), nil
}

// clientKey is the client an RPC on conn (nil if untracked) comes from:
// ratelimit.ClientKey, computed once per connection. Called with c.mu held.
func (c *Controller) clientKey(ctx context.Context, conn *trackedConn) string {
	if conn == nil {
		return ratelimit.ClientKey(ctx)
	}
	if conn.key == "" {
		conn.key = ratelimit.ClientKey(ctx)
	}
	return conn.key
}

// refuse counts a refusal and builds its status. Called with c.mu held.
func (c *Controller) refuse(limit string, code codes.Code, msg string) error {
	c.m.StreamsRefused.WithLabelValues(limit).Inc()
	st := status.New(code, msg)
	if code == codes.ResourceExhausted {
		if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(RetryAfter)}); err == nil {
			st = d
		}
	}
	return st.Err()
}

func (c *Controller) release(cl *call) {
	if !cl.released.CompareAndSwap(false, true) {
		return
	}
	c.mu.Lock()
	delete(c.calls, cl)
	use := c.clients[cl.key]
	if cl.health {
		c.health--
		use.health--
	} else {
		c.rpcMemory -= cl.cost
		use.memory -= cl.cost
	}
	if use.health == 0 && use.memory == 0 {
		delete(c.clients, cl.key)
	}
	c.setGauges()
	c.mu.Unlock()
}

// setGauges publishes what is charged and open. Called with c.mu held, by
// whoever changed it, so the gauges follow the changes in their order.
func (c *Controller) setGauges() {
	c.m.RPCMemory.Set(float64(c.rpcMemory))
	c.m.HealthStreams.Set(float64(c.health))
	c.m.Connections.Set(float64(len(c.conns)))
}

// InFlight is the number of RPCs admitted and not yet ended, health
// included.
func (c *Controller) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

// InterceptUnary is a grpc.UnaryServerInterceptor that marks a unary RPC's
// request as received: grpc-go has read it before any interceptor runs. It
// is a method, not a constructed closure, so the server can call it from
// its chain without allocating per call.
func (c *Controller) InterceptUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if cl, ok := ctx.Value(callKey{}).(*call); ok {
		cl.received.Store(true)
		defer c.release(cl)
	}
	return handler(ctx, req)
}

// InterceptStream is a grpc.StreamServerInterceptor that watches a
// stream's messages: the first one received, and sends held up by flow
// control.
//
// A stream reaped for want of its first message ends CANCELLED, with no
// message, like a unary call: grpc-go answers the cancelled read itself,
// before the handler's error comes back through the interceptors.
func (c *Controller) InterceptStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	cl, ok := ss.Context().Value(callKey{}).(*call)
	if !ok {
		return handler(srv, ss)
	}
	defer c.release(cl)
	return handler(srv, &watchedStream{ServerStream: ss, call: cl, now: c.now})
}

type watchedStream struct {
	grpc.ServerStream
	call *call
	now  func() time.Time
}

func (s *watchedStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	s.call.received.Store(true)
	return err
}

func (s *watchedStream) SendMsg(m any) error {
	s.call.sendingSince.Store(s.now().UnixNano())
	err := s.ServerStream.SendMsg(m)
	s.call.sendingSince.Store(0)
	return err
}

// Run reaps RPCs past their timeouts, and releases RPCs that ended before
// their handler started, until ctx is done: it looks at every RPC in
// flight a few times per timeout, and at least every second.
func (c *Controller) Run(ctx context.Context) {
	every := time.Second
	for _, d := range []time.Duration{c.limits.FirstMessageTimeout, c.limits.SendStallTimeout} {
		if d > 0 {
			every = min(every, max(d/8, 10*time.Millisecond))
		}
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			c.reap()
		}
	}
}

func (c *Controller) reap() {
	now := c.now()
	var late, stalled, ended []*call
	c.mu.Lock()
	for cl := range c.calls {
		if cl.ctx.Err() != nil {
			ended = append(ended, cl)
			continue
		}
		if cl.reaped.Load() {
			continue
		}
		if t := c.limits.FirstMessageTimeout; t > 0 && !cl.received.Load() && now.Sub(cl.start) > t {
			late = append(late, cl)
			continue
		}
		if t := c.limits.SendStallTimeout; t > 0 {
			if since := cl.sendingSince.Load(); since != 0 && now.Sub(time.Unix(0, since)) > t {
				stalled = append(stalled, cl)
			}
		}
	}
	c.mu.Unlock()
	for _, cl := range ended {
		c.release(cl)
	}
	for _, cl := range late {
		if cl.reaped.CompareAndSwap(false, true) {
			c.m.StreamsReaped.WithLabelValues(LimitFirstMessageTimeout).Inc()
			cl.cancel(ErrFirstMessageTimeout)
		}
	}
	for _, cl := range stalled {
		if cl.reaped.CompareAndSwap(false, true) {
			c.m.StreamsReaped.WithLabelValues(LimitSendStallTimeout).Inc()
			// Cancelling would end the handler but leave grpc-go's queue
			// of unsent messages, and the stream, in place until the
			// client reads: only closing the connection frees them.
			if cl.conn != nil {
				cl.conn.Close()
			}
			cl.cancel(errSendStalled)
		}
	}
}

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
	c.setGauges()
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
// which the access log, the rate limiter and TapHandle read per RPC
// (formatting a *net.TCPAddr was 2.5 % of the server's CPU at 20,000
// unary calls/s, done twice per call).
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
		t.c.setGauges()
		t.c.mu.Unlock()
	})
	return err
}
