package admission

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/acme/greeter/services/greeter/internal/rpcmethod"
)

// Controller enforces Limits. Its zero value is not usable; use New.
type Controller struct {
	limits  Limits
	m       Metrics
	log     *slog.Logger
	methods map[string]method // by full method name
	now     func() time.Time
	// readMemory is what the Go runtime holds (heap objects and stacks)
	// and how many collections it has completed: readRuntimeMemory, or a
	// test's.
	readMemory func() (held int64, gcs uint64)
	baseline   int64 // held when the Controller was built
	// rpcMemory is what RPCs held at the last sample: held - baseline.
	rpcMemory atomic.Int64
	// sendClock is when the reaper last looked (UnixNano): a send notes it
	// as its start rather than reading the clock, a cost every message of
	// every stream would pay; reapEvery is how often it looks (Run's
	// interval, 0 when Run does not run), by which a noted start may be
	// early.
	sendClock atomic.Int64
	reapEvery time.Duration
	// waiting counts the admitted RPCs whose first request message has not
	// arrived (Limits.MaxWaiting).
	waiting atomic.Int64
	events  events
	// shedUnread are the RPCs shed before their request was read, to be
	// cancelled at the next reap (shed); only Run touches it.
	shedUnread []*call
	// idleConns is closeIdle's scratch, kept between passes; only Run
	// touches it.
	idleConns []*trackedConn
	// gc is the garbage collector's target under pressure; only Run
	// touches it.
	gc collectorTarget

	// queued are the gRPC port's response streams' messages handed to
	// grpc-go and not yet written (QueuedShared).
	queued atomic.Int64

	mu sync.Mutex
	// charged is the estimate of what the RPCs in flight hold (health
	// apart), chargedAtSample its value when rpcMemory was read: what was
	// admitted since is added to the sample (usage).
	charged         int64
	chargedAtSample int64
	// readAt is when rpcMemory was last read, by the sampler or by
	// reread.
	readAt    time.Time
	health    [healthKinds]int
	clients   map[string]*clientUse // by ratelimit.ClientKey
	calls     map[*call]struct{}
	conns     map[*trackedConn]struct{}
	connsByIP map[string]int
}

// healthKind tells health RPCs apart: a client's Watch streams, one per
// channel and long-lived, must not use up the room of its Check calls.
type healthKind uint8

const (
	notHealth healthKind = iota
	healthCheck
	healthWatch
	healthKinds
)

// method is what admission needs to know of a registered method.
type method struct {
	health healthKind
}

type clientUse struct {
	charge int64
	health [healthKinds]int
	calls  int
	// waiting counts its admitted RPCs whose first request message has
	// not arrived (Limits.MaxWaiting); atomic, as the request's arrival is
	// noted without the Controller's lock.
	waiting atomic.Int64
}

// call is one RPC the tap handle has seen: admitted, or refused and not yet
// answered.
type call struct {
	key    string
	cost   int64 // charged to charged and to its client
	health healthKind
	start  time.Time
	// refusal, if not nil, is the status the RPC is refused with, by the
	// first interceptor.
	refusal      error
	received     atomic.Bool  // its first request message arrived
	waiting      atomic.Bool  // counted in its client's and the Controller's waiting
	use          *clientUse   // its client's, for as long as it is counted there
	sendingSince atomic.Int64 // UnixNano when a blocked send began, 0 if none
	stalled      bool         // charged StalledCost; guarded by Controller.mu
	reaped       atomic.Bool  // cancelled by the reaper (any reason)
	shed         atomic.Bool  // cancelled to free memory
	released     atomic.Bool
	conn         *trackedConn // nil if the listener is not a Controller's
	// evicted: ended to make room for another, a health RPC's place
	// given back at once (heldHealth, heldRPC, waitingRPC); guarded by
	// Controller.mu. madeRoomFor is the limit it made room at, if not the
	// memory's or the health calls'.
	evicted     bool
	madeRoomFor string
	ctx         context.Context
	cancel      context.CancelCauseFunc
}

type callKey struct{}

// New returns a Controller enforcing l, counting into m and logging
// refusals to log (at most a line a second). services are the server's
// registered services (grpc.Server.GetServiceInfo), which tell health RPCs
// apart.
func New(l Limits, m Metrics, log *slog.Logger, services map[string]grpc.ServiceInfo) *Controller {
	if log == nil {
		log = slog.Default()
	}
	c := &Controller{
		limits:     l,
		m:          m,
		log:        log,
		methods:    map[string]method{},
		now:        time.Now,
		readMemory: readRuntimeMemory,
		gc:         newCollectorTarget(),
		clients:    map[string]*clientUse{},
		calls:      map[*call]struct{}{},
		conns:      map[*trackedConn]struct{}{},
		connsByIP:  map[string]int{},
	}
	c.baseline, _ = c.readMemory()
	c.sendClock.Store(c.now().UnixNano())
	for name, info := range services {
		for _, md := range info.Methods {
			var h healthKind
			if rpcmethod.IsHealthService(name) {
				h = healthCheck
				if md.IsServerStream {
					h = healthWatch
				}
			}
			c.methods[rpcmethod.Join(name, md.Name)] = method{health: h}
		}
	}
	c.events.init(m)
	return c
}

// charge adds cost to cl and to its client. Called with c.mu held.
func (c *Controller) charge(cl *call, use *clientUse, cost int64) {
	cl.cost += cost
	use.charge += cost
	c.charged += cost
}

// receivedRequest notes that cl's first request message arrived.
func (c *Controller) receivedRequest(cl *call) {
	cl.received.Store(true)
	c.stopWaiting(cl)
}

// stopWaiting takes cl out of the waiting counts, once.
func (c *Controller) stopWaiting(cl *call) {
	if cl.waiting.CompareAndSwap(true, false) {
		cl.use.waiting.Add(-1)
		c.waiting.Add(-1)
		if cl.conn != nil {
			cl.conn.waiting.Add(-1)
		}
	}
}

// release gives back what cl was charged or counted, once.
func (c *Controller) release(cl *call) {
	if !cl.released.CompareAndSwap(false, true) {
		return
	}
	c.stopWaiting(cl)
	c.mu.Lock()
	delete(c.calls, cl)
	use := c.clients[cl.key]
	c.charged -= cl.cost
	use.charge -= cl.cost
	use.calls--
	if cl.health != notHealth && cl.refusal == nil && !cl.evicted {
		c.health[cl.health]--
		use.health[cl.health]--
	}
	if use.calls == 0 {
		delete(c.clients, cl.key)
	}
	if conn := cl.conn; conn != nil {
		if conn.calls--; conn.calls == 0 {
			conn.idleSince = c.now()
		}
	}
	c.m.HealthStreams.Set(float64(c.health[healthCheck] + c.health[healthWatch]))
	c.mu.Unlock()
}

// InFlight is the number of RPCs admitted or refused and not yet ended,
// health included.
func (c *Controller) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

// The limit labels of the stream and the connection metrics. A stream is
// refused at LimitMaxConnections when it arrives on a connection being
// closed to make room (goAwayAndClose).
var (
	streamLimits = []string{LimitMaxRPCMemory, LimitMaxRPCMemoryPerClient, LimitMaxHealthStreams, LimitFirstMessageTimeout, LimitSendStallTimeout, LimitWaiting, LimitMaxConnections}
	connLimits   = []string{LimitMaxConnections, LimitMaxConnectionsPerClient, LimitMaxRPCMemory, LimitIdleTimeout}
)

// counters are a metric's children by limit, looked up once.
func counters(v *prometheus.CounterVec, limits []string) map[string]prometheus.Counter {
	out := map[string]prometheus.Counter{}
	for _, l := range limits {
		out[l] = v.WithLabelValues(l)
	}
	return out
}
