package admission

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/acme/greeter/services/greeter/internal/ratelimit"
)

// Admit is admission's one decision, whatever the transport: whether the
// call of method ("/acme.greeter.v1.GreeterService/SayHello") from client
// may start, decided before any of its request is read. It returns the
// context the call must run in (cancelling it, as the reaper does, ends
// the call's waits for its request and for flow control) and release,
// which ends the call's charge once the call is over and may be called
// after the interceptors have released it; or, for a refused call, the
// status to answer it with, its charge already released.
//
// The admitted context carries client as its peer (peer.NewContext).
//
// A transport that reads a call's headers before its body (the HTTP port)
// answers the refusal itself. grpc-go's tap handle cannot: see TapHandle.
func (c *Controller) Admit(ctx context.Context, client *peer.Peer, method string) (admitted context.Context, release func(), err error) {
	ctx = peer.NewContext(ctx, client)
	cl := c.enter(ctx, method)
	if cl == nil {
		return ctx, func() {}, nil
	}
	if cl.refusal != nil {
		c.release(cl)
		return nil, nil, cl.refusal
	}
	return context.WithValue(cl.ctx, callKey{}, cl), func() { c.release(cl) }, nil
}

// TapHandle is Admit for grpc-go: pass it to grpc.InTapHandle. grpc-go
// calls it holding its connection's lock, so it never blocks.
//
// It never returns an error: grpc-go's answer to a tap handle's error does
// not cancel the stream's context, whose deadline timer then keeps it (and
// what it holds) until the client's grpc-timeout, an hour if the client
// says so. A refused RPC is marked instead, and answered by
// InterceptUnary/InterceptStream, the first interceptors, from which
// grpc-go ends the stream the ordinary way; a refused RPC that never sends
// its request is cancelled by the reaper. The interceptors release the
// call when its handler returns; one that ends before its handler starts
// (reset by the client, reaped waiting for its request) is released by the
// reaper once its context is done (Run).
func (c *Controller) TapHandle(ctx context.Context, info *tap.Info) (context.Context, error) {
	cl := c.enter(ctx, info.FullMethodName)
	if cl == nil {
		return ctx, nil
	}
	// Not context.AfterFunc for the release: it cost more per RPC than
	// all the rest of the admission together.
	return context.WithValue(cl.ctx, callKey{}, cl), nil
}

// enter decides on a call of method from the client in ctx's peer and
// counts it, refused or not, until it is released; nil for a method the
// server does not serve, which grpc-go answers UNIMPLEMENTED without a
// handler: nothing to charge (a newer client calling an older server must
// not be refused for it).
func (c *Controller) enter(ctx context.Context, method string) *call {
	m, known := c.methods[method]
	if !known {
		return nil
	}
	cl := &call{health: m.health, start: c.now()}
	if p, ok := peer.FromContext(ctx); ok {
		if a, ok := p.Addr.(*remoteAddr); ok {
			cl.conn = a.conn
		}
	}
	// Set before the reaper can see the call, which it does once in c.calls.
	cl.ctx, cl.cancel = context.WithCancelCause(ctx)

	c.mu.Lock()
	cl.key = c.clientKey(ctx, cl.conn)
	use := c.clients[cl.key]
	if use == nil {
		use = &clientUse{}
		c.clients[cl.key] = use
	}
	var (
		r       refusal
		evicted *call
	)
	switch {
	case cl.conn != nil && cl.conn.gone:
		// Closed to make room, its GOAWAY on its way (goAwayAndClose): the
		// client retries the call on another connection, so it must not
		// run here too.
		r = refusal{LimitMaxConnections, codes.Unavailable, "greeter: this connection is closing (GOAWAY): retry on another"}
	case cl.health != notHealth:
		r = c.admitHealth(cl.health, use)
		if r.limit == LimitMaxHealthStreams && r.code == codes.Unavailable {
			// Full: a held call whose request never came makes room.
			if evicted = c.heldHealth(cl.health); evicted != nil {
				r = refusal{}
			}
		}
	default:
		r, evicted = c.admitRPC(use)
	}
	switch {
	case cl.health != notHealth:
		if r.limit == "" {
			c.health[cl.health]++
			use.health[cl.health]++
			c.m.HealthStreams.Set(float64(c.health[healthCheck] + c.health[healthWatch]))
		}
	default:
		// A refused RPC is charged too until it is answered: a client
		// flooding refused calls that never send their request holds a
		// goroutine for each, and is the biggest holder for it.
		c.charge(cl, use, RPCCost)
		if r.limit == "" {
			cl.use = use
			cl.waiting.Store(true)
			use.waiting.Add(1)
			c.waiting.Add(1)
			if cl.conn != nil {
				cl.conn.waiting.Add(1)
			}
		}
	}
	use.calls++
	if cl.conn != nil {
		cl.conn.calls++
		cl.conn.lastCall = cl.start
	}
	c.calls[cl] = struct{}{}
	c.mu.Unlock()

	switch {
	case evicted == nil:
	case evicted.health != notHealth:
		c.end(evicted, LimitMaxHealthStreams, errHealthEvicted, false)
	case evicted.madeRoomFor == LimitWaiting:
		c.end(evicted, LimitWaiting, errWaitingEvicted, false)
	default:
		c.end(evicted, LimitMaxRPCMemory, errMadeRoom, false)
	}

	if r.limit != "" {
		cl.refusal = r.err()
		c.events.refused(r.limit)
	}
	return cl
}

// refusal is why an RPC is refused; the zero value admits it.
type refusal struct {
	limit string
	code  codes.Code
	msg   string
}

// err is the status a refused RPC is answered with: RESOURCE_EXHAUSTED,
// this client's quota, carries a RetryInfo; UNAVAILABLE, this replica is
// full, is retried by any client's retry policy, perhaps on another
// replica.
func (r refusal) err() error {
	st := status.New(r.code, r.msg)
	if r.code == codes.ResourceExhausted {
		if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(RetryAfter)}); err == nil {
			st = d
		}
	}
	return st.Err()
}

// admitHealth decides on a health RPC of kind h. Called with c.mu held.
func (c *Controller) admitHealth(h healthKind, use *clientUse) refusal {
	l := c.limits
	switch {
	case l.MaxHealthStreams > 0 && c.health[h] >= l.MaxHealthStreams:
		return refusal{LimitMaxHealthStreams, codes.Unavailable, fmt.Sprintf("greeter: %d health %s RPCs in flight, the server's limit: retry shortly", c.health[h], h)}
	case l.MaxHealthPerClient > 0 && use.health[h] >= l.MaxHealthPerClient:
		return refusal{LimitMaxHealthStreams, codes.ResourceExhausted, fmt.Sprintf("greeter: this client has %d health %s RPCs in flight, its limit", use.health[h], h)}
	}
	return refusal{}
}

// admitRPC decides on an RPC of a client using use. Called with c.mu held.
//
// Within the budget, everyone is admitted: a lone client may use what
// nobody else needs. Beyond it, a client within its fair share (the budget
// over the clients holding RPCs) is still admitted, and the client holding
// the most gives way (the reaper sheds its RPCs); one beyond its share is
// refused. Past a quarter over the budget (75% of the memory limit by
// default, short of GOMEMLIMIT's 90%), while shedding catches up, everyone
// is, but for a client within its share when a call of a client beyond
// its share waits for a request that has not come (heldRPC): that call is
// ended to make room (returned, to be ended once c.mu is released). A
// crowd opening streams it never sends on reaches the hard limit in a
// burst, before the reaper sheds it, and refusing everyone then refused
// the clients that hold little, for the crowd's sake.
func (c *Controller) admitRPC(use *clientUse) (refusal, *call) {
	l := c.limits
	if l.MaxRPCMemoryPerClient > 0 && use.charge+RPCCost > l.MaxRPCMemoryPerClient {
		return refusal{LimitMaxRPCMemoryPerClient, codes.ResourceExhausted, fmt.Sprintf("greeter: this client holds %d KiB in RPCs in flight, its limit is %d KiB; retry after some end", use.charge>>10, l.MaxRPCMemoryPerClient>>10)}, nil
	}
	waitingFull := l.MaxWaiting > 0 && c.waiting.Load() >= int64(l.MaxWaiting)
	share := int64(max(1, l.MaxWaiting/len(c.clients)))
	if w := use.waiting.Load(); waitingFull && w >= share {
		return refusal{LimitWaiting, codes.ResourceExhausted, fmt.Sprintf("greeter: this client has %d calls whose request has not arrived, more than its share of %d among %d clients; send each call's request with it, or retry after some end", w, share, len(c.clients))}, nil
	}
	r, victim := c.admitMemory(use)
	if r.limit != "" || victim != nil || !waitingFull {
		return r, victim
	}
	// Within its share of a full MaxWaiting: a call of a client waiting on
	// more than its share gives way. Admitting it on top let each client
	// that arrived add its share to the count: 50 addresses opening held
	// streams one after another had 9,349 waiting of a MaxWaiting of
	// 2,457, and took the server to 235 MiB.
	return refusal{}, c.waitingRPC(use, share)
}

// waitingRPC is the call to end so that a client using use, within its
// share of Limits.MaxWaiting, may start one while that many wait: one
// whose request has not come within makeRoomAfter, of the client waiting
// on the most beyond share, the oldest (unreceived); it no longer counts
// as waiting. nil if there is none. Called with c.mu held.
func (c *Controller) waitingRPC(use *clientUse, share int64) *call {
	victim := c.heldElsewhere(use, func(cl *call) (int64, bool) {
		w := cl.use.waiting.Load()
		return w, w > share
	})
	if victim != nil {
		victim.madeRoomFor = LimitWaiting
		c.stopWaiting(victim)
	}
	return victim
}

// admitMemory decides on an RPC of a client using use by the memory RPCs
// hold (admitRPC). Called with c.mu held.
func (c *Controller) admitMemory(use *clientUse) (refusal, *call) {
	l := c.limits
	budget := l.MaxRPCMemory
	if budget <= 0 {
		return refusal{}, nil
	}
	usage := c.usage()
	if usage+RPCCost > budget && c.reread() {
		usage = c.usage()
	}
	if usage+RPCCost <= budget {
		return refusal{}, nil
	}
	held, share := c.held(use, usage), c.share()
	if usage+RPCCost > budget*HardLimitPercent/100 {
		if held+RPCCost <= share {
			if victim := c.heldRPC(use, usage, share); victim != nil {
				return refusal{}, victim
			}
		}
		return refusal{LimitMaxRPCMemory, codes.Unavailable, fmt.Sprintf("greeter: RPCs in flight hold %d KiB, over the server's %d KiB; retry, another replica may have room", usage>>10, budget>>10)}, nil
	}
	if held+RPCCost <= share {
		return refusal{}, nil
	}
	return refusal{LimitMaxRPCMemoryPerClient, codes.ResourceExhausted, fmt.Sprintf("greeter: the server is short of memory and this client holds %d KiB, more than its share of %d KiB among %d clients; retry after some end", held>>10, share>>10, len(c.clients))}, nil
}

// heldRPC is the call to end so that a client using use, within its share,
// may start one past the hard limit: one whose request has not come
// within makeRoomAfter, of the client beyond its share holding the most,
// the oldest (unreceived); nil if there is none. Called with c.mu held.
func (c *Controller) heldRPC(use *clientUse, usage, share int64) *call {
	return c.heldElsewhere(use, func(cl *call) (int64, bool) {
		held := c.held(c.clients[cl.key], usage)
		return held, held > share
	})
}

// heldElsewhere is unreceived among the calls, not health calls, of clients
// other than use's whose request has not come within makeRoomAfter: the
// calls that may be ended to make room for use's. Called with c.mu held.
func (c *Controller) heldElsewhere(use *clientUse, weigh func(*call) (int64, bool)) *call {
	now := c.now()
	return c.unreceived(func(cl *call) (int64, bool) {
		if cl.health != notHealth || cl.use == use || now.Sub(cl.start) < makeRoomAfter {
			return 0, false
		}
		return weigh(cl)
	})
}

// makeRoomAfter is how long a call's request may take to come before the
// call may be ended to make room past the hard limit: a client sends it
// with the call's headers, or within milliseconds of them.
const makeRoomAfter = 100 * time.Millisecond

// heldHealth is the health call of kind h to end so that another may
// start: one whose request has not come (a probe's arrives with its
// headers), of the client holding the most calls of that kind, the oldest
// (unreceived); its place is given back at once. nil if there is none.
// Called with c.mu held.
func (c *Controller) heldHealth(h healthKind) *call {
	victim := c.unreceived(func(cl *call) (int64, bool) {
		return int64(c.clients[cl.key].health[h]), cl.health == h
	})
	if victim != nil {
		c.health[h]--
		c.clients[victim.key].health[h]--
	}
	return victim
}

// unreceived is the call to end to make room for another: of the admitted
// calls whose request has not come and that nothing has ended yet, those
// weigh accepts, the one of the client weighed the most, the oldest. It is
// marked evicted, so that it is not chosen twice; nil if there is none.
// Called with c.mu held.
func (c *Controller) unreceived(weigh func(*call) (held int64, ok bool)) *call {
	var (
		victim *call
		most   int64
	)
	for cl := range c.calls {
		if cl.refusal != nil || cl.evicted || cl.received.Load() || cl.reaped.Load() {
			continue
		}
		held, ok := weigh(cl)
		if ok && (victim == nil || held > most || (held == most && cl.start.Before(victim.start))) {
			victim, most = cl, held
		}
	}
	if victim != nil {
		victim.evicted = true
	}
	return victim
}

// held is what a client using use holds of usage: usage shared out in
// proportion to the estimates, which attribute memory to clients but do
// not add up to what is measured; at most heldPerCharge times its own
// estimate. Without that bound, the memory a crowd leaves behind for a
// moment once its calls have ended (goroutines exiting, garbage) fell
// on the clients left, a well-behaved one alone holding "all" of it and
// refused for it. Called with c.mu held.
func (c *Controller) held(use *clientUse, usage int64) int64 {
	if c.charged <= 0 {
		return use.charge
	}
	return min(int64(float64(use.charge)*float64(usage)/float64(c.charged)), use.charge*heldPerCharge)
}

// heldPerCharge bounds what a client is taken to hold, as a multiple of
// its estimates: a crowd's held streams measure about five times their
// RPCCost (docs/reliability.md).
const heldPerCharge = 8

// usage is what RPCs hold: the last sample, plus the estimates of what
// was admitted since. Called with c.mu held.
func (c *Controller) usage() int64 {
	return c.rpcMemory.Load() + max(0, c.charged-c.chargedAtSample)
}

// share is a client's fair share of the budget: the budget over the
// clients holding RPCs. Called with c.mu held.
func (c *Controller) share() int64 {
	return c.limits.MaxRPCMemory / int64(max(1, len(c.clients)))
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

func (h healthKind) String() string {
	if h == healthWatch {
		return "Watch"
	}
	return "Check"
}
