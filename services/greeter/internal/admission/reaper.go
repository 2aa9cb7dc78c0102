package admission

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Run samples the memory RPCs hold, reaps RPCs past their timeouts (scaled
// by that pressure), sheds the RPCs of the client holding the most while
// the server is over its budget, releases RPCs that ended before their
// handler started, and logs what it refused, until ctx is done. It looks
// at every RPC in flight every sampleEvery, more often for timeouts
// shorter than 8 of it.
func (c *Controller) Run(ctx context.Context) {
	every := sampleEvery
	for _, d := range []time.Duration{c.limits.FirstMessageTimeout, c.limits.SendStallTimeout} {
		if d > 0 {
			every = min(every, max(d/8, 10*time.Millisecond))
		}
	}
	c.reapEvery = every
	tick := time.NewTicker(every)
	defer tick.Stop()
	// A lowered collector target is the Controller's to give back: the
	// process may serve on without it (a test's, an embedder's).
	defer c.gc.giveBack()
	var (
		lastGC   = c.now()
		gcs      uint64
		shedAtGC = ^uint64(0)
		lastLog  = c.now()
		pressure float64
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pressure = c.sample(&lastGC, &gcs)
		c.gc.follow(pressure, c.now(), c.log)
		c.reap(pressure)
		c.closeIdle(pressure)
		// What shed RPCs held is seen only once they have ended and the
		// garbage collector has run: shed once per collection, or the
		// same excess would be shed again at every tick.
		if gcs != shedAtGC && c.shed() {
			shedAtGC = gcs
		}
		if now := c.now(); now.Sub(lastLog) >= time.Second {
			c.events.flush(c.log, pressure)
			lastLog = now
		}
	}
}

// reap ends the RPCs past their timeouts at pressure p, and charges or
// uncharges StalledCost to those whose sends wait on their client.
func (c *Controller) reap(p float64) {
	c.cancelShedUnread()
	now := c.now()
	c.sendClock.Store(now.UnixNano())
	firstMessage := scaled(c.limits.FirstMessageTimeout, p)
	sendStall := scaled(c.limits.SendStallTimeout, p)
	// A refused RPC is answered once its request arrives; one whose request
	// does not come is cancelled soon, whatever the first-message timeout.
	answerWithin := time.Second
	if firstMessage > 0 {
		answerWithin = min(answerWithin, firstMessage)
	}
	var late, stalled, ended, unanswered []*call
	c.mu.Lock()
	for cl := range c.calls {
		if cl.ctx.Err() != nil {
			ended = append(ended, cl)
			continue
		}
		if cl.reaped.Load() {
			continue
		}
		if cl.refusal != nil {
			if now.Sub(cl.start) > answerWithin {
				unanswered = append(unanswered, cl)
			}
			continue
		}
		if firstMessage > 0 && !cl.received.Load() && now.Sub(cl.start) > firstMessage {
			late = append(late, cl)
			continue
		}
		blockedFor := time.Duration(0)
		if since := cl.sendingSince.Load(); since != 0 {
			// The send noted the previous look: it may have begun up to
			// reapEvery later.
			blockedFor = now.Sub(time.Unix(0, since)) - c.reapEvery
		}
		if blocked := blockedFor > sampleEvery; blocked != cl.stalled && cl.health == notHealth {
			cost := int64(StalledCost)
			if !blocked {
				cost = -cost
			}
			c.charge(cl, c.clients[cl.key], cost)
			// What it queued is in the memory just sampled, not admitted
			// since: the charge attributes it to the client, and must not
			// count again in usage until the next sample, which would
			// refuse everyone for a burst of stalled sends.
			c.chargedAtSample += cost
			cl.stalled = blocked
		}
		if sendStall > 0 && blockedFor > sendStall {
			stalled = append(stalled, cl)
		}
	}
	c.mu.Unlock()
	for _, cl := range ended {
		c.release(cl)
	}
	for _, cl := range unanswered {
		if cl.reaped.CompareAndSwap(false, true) {
			cl.cancel(errRefused)
		}
	}
	for _, cl := range late {
		c.end(cl, LimitFirstMessageTimeout, ErrFirstMessageTimeout, false)
	}
	for _, cl := range stalled {
		c.end(cl, LimitSendStallTimeout, errSendStalled, true)
	}
}

// end cancels cl with cause, counted against limit, once. closeConn closes
// its connection too: cancelling a stream whose sends wait on its client
// ends the handler but leaves grpc-go's queue of unsent messages, and the
// stream, in place until the client reads; only closing the connection
// frees them.
func (c *Controller) end(cl *call, limit string, cause error, closeConn bool) bool {
	if !cl.reaped.CompareAndSwap(false, true) {
		return false
	}
	c.events.reaped(limit)
	if closeConn && cl.conn != nil {
		cl.conn.Close()
	}
	cl.cancel(cause)
	return true
}

// requestOnItsWay is how long after an RPC starts its request may still be
// on its way from a well-behaved but busy client (grpc-go sends a stream's
// headers and its first message separately): shed does not take an RPC
// whose request has not arrived until it is this old.
const requestOnItsWay = time.Second

// shed ends RPCs of the client holding the most, if it holds more than its
// share and the server is over its budget, until what they were charged
// covers the excess: first those whose request has not arrived (once
// requestOnItsWay old), then those whose client reads nothing, then the
// newest. It reports whether it shed any.
func (c *Controller) shed() bool {
	budget := c.limits.MaxRPCMemory
	if budget <= 0 {
		return false
	}
	type victim struct {
		cl       *call
		received bool
		stalled  bool
		cost     int64
	}
	var victims []victim
	c.mu.Lock()
	usage := c.usage()
	over := usage - budget
	share := c.share()
	var key string
	var most *clientUse
	for k, u := range c.clients {
		if most == nil || u.charge > most.charge {
			key, most = k, u
		}
	}
	if most == nil || over <= 0 || c.held(most, usage) <= share {
		c.mu.Unlock()
		return false
	}
	// In estimates, as the victims' costs are.
	need := min(over, c.held(most, usage)-share) * most.charge / max(1, c.held(most, usage))
	now := c.now()
	for cl := range c.calls {
		if cl.key != key || cl.refusal != nil || cl.health != notHealth || cl.reaped.Load() {
			continue
		}
		received := cl.received.Load()
		if !received && now.Sub(cl.start) < requestOnItsWay {
			// Cancelling it would answer it CANCELLED (cancelShedUnread):
			// shed if its request is still missing later.
			continue
		}
		victims = append(victims, victim{cl, received, cl.stalled, cl.cost})
	}
	c.mu.Unlock()
	slices.SortFunc(victims, func(a, b victim) int {
		switch {
		case a.received != b.received:
			if !a.received {
				return -1
			}
			return 1
		case a.stalled != b.stalled:
			if a.stalled {
				return -1
			}
			return 1
		}
		return b.cl.start.Compare(a.cl.start)
	})
	var freed int64
	for _, v := range victims {
		if freed >= need {
			break
		}
		// Marked before it is cancelled, so that its interceptor, which
		// may return at once, answers why. Only Run ends RPCs, so nothing
		// else can have ended it meanwhile but the client.
		v.cl.shed.Store(true)
		ended := false
		if v.received {
			ended = c.end(v.cl, LimitMaxRPCMemory, shedStatus, v.stalled)
		} else if ended = v.cl.reaped.CompareAndSwap(false, true); ended {
			// Not cancelled yet: a read cut short by the cancellation is
			// answered CANCELLED by grpc-go itself (serverStream.RecvMsg
			// writes the status), before the interceptor can say why. The
			// request of an RPC whose handler has not read it yet is
			// usually there already: watchedStream answers it
			// RESOURCE_EXHAUSTED without reading, or once read. Those whose
			// request does not come within a tick are cancelled then.
			c.events.reaped(LimitMaxRPCMemory)
			c.shedUnread = append(c.shedUnread, v.cl)
		}
		if ended {
			freed += v.cost
		} else {
			v.cl.shed.Store(false)
		}
	}
	return freed > 0
}

// cancelShedUnread cancels the RPCs shed before their request was read
// (shed), whose request has not come since.
func (c *Controller) cancelShedUnread() {
	for _, cl := range c.shedUnread {
		cl.cancel(shedStatus)
	}
	clear(c.shedUnread)
	c.shedUnread = c.shedUnread[:0]
}

// events counts refusals, reaps and the connections refused or closed to
// make room into the metrics, and keeps the counts since the last log
// line.
type events struct {
	mu                                     sync.Mutex
	refusals, reaps, connRefusals, evicted tally
}

// tally is one metric's children by limit, and its counts since the last
// log line (guarded by events.mu).
type tally struct {
	by   map[string]prometheus.Counter
	last map[string]int
}

func (e *events) init(m Metrics) {
	e.refusals.by, e.reaps.by = counters(m.StreamsRefused, streamLimits), counters(m.StreamsReaped, streamLimits)
	e.connRefusals.by, e.evicted.by = counters(m.ConnectionsRefused, connLimits), counters(m.ConnectionsEvicted, connLimits)
	e.reset()
}

// reset starts the counts of the next log line. Called with e.mu held, or
// before e is shared.
func (e *events) reset() {
	for _, t := range []*tally{&e.refusals, &e.reaps, &e.connRefusals, &e.evicted} {
		t.last = map[string]int{}
	}
}

// count counts one event of t under limit.
func (e *events) count(t *tally, limit string) {
	t.by[limit].Inc()
	e.mu.Lock()
	t.last[limit]++
	e.mu.Unlock()
}

func (e *events) refused(limit string)     { e.count(&e.refusals, limit) }
func (e *events) reaped(limit string)      { e.count(&e.reaps, limit) }
func (e *events) connRefused(limit string) { e.count(&e.connRefusals, limit) }
func (e *events) connEvicted(limit string) { e.count(&e.evicted, limit) }

// flush logs, in one line, what was refused, reaped or closed since the
// last line, if anything was: a flood of refusals or evictions costs one
// line a second.
func (e *events) flush(log *slog.Logger, pressure float64) {
	e.mu.Lock()
	refused, reaped, connRefused, connEvicted := e.refusals.last, e.reaps.last, e.connRefusals.last, e.evicted.last
	if len(refused) == 0 && len(reaped) == 0 && len(connRefused) == 0 && len(connEvicted) == 0 {
		e.mu.Unlock()
		return
	}
	e.reset()
	e.mu.Unlock()
	log.Warn("overload: RPCs refused or ended, connections refused or closed to make room, in the last second",
		"refused", refused, "ended", reaped, "connections_refused", connRefused, "connections_evicted", connEvicted,
		"memory_pressure", float64(int(pressure*100))/100)
}
