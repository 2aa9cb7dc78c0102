package admission

import (
	"slices"
	"time"
)

// idleAtHalf is how long a connection may have no RPC in flight once half
// of Limits.MaxConnections are open: long enough that a client calling
// now and then keeps its connection (gRPC clients ping or call well within
// a minute when they mean to), short enough that a crowd of idle
// connections gives its places back before the cap is reached.
const idleAtHalf = time.Minute

// idleClosesPerTick bounds the connections closeIdle closes in one reaper
// pass (640 a second at the reaper's 100 ms): a crowd of thousands
// idle is taken down over seconds rather than in one pass that holds the
// Controller's lock, and each close lowers the count, which lengthens the
// timeout of those left.
const idleClosesPerTick = 64

// idleTimeout is how long a connection may have no RPC in flight while n
// of max connections are open and memory is at pressure p: no limit (0)
// below half of max and below half the budget, then the shorter of the
// timeouts at the count and at the pressure, each from idleAtHalf at half
// down to minIdle at the cap (the budget) and beyond, as the first-message
// timeout shortens as memory fills (Envoy's reduce_timeouts on downstream
// idle): the closer the count is to the cap, the sooner idle connections
// give way, so that a newcomer rarely finds the server full; the fuller
// the memory, the sooner what they hold (21 KiB each, their buffers while
// they read) goes back to the RPCs. max 0 (no cap) sets no limit by count.
func idleTimeout(n, max int, p float64) time.Duration {
	var byCount, byPressure time.Duration
	if max > 0 && 2*n >= max {
		byCount = shrunkIdle(float64(2*n-max) / float64(max)) // 0 at half, 1 at max
	}
	if p >= 0.5 {
		byPressure = shrunkIdle(2*p - 1) // 0 at half, 1 at the budget
	}
	switch {
	case byCount == 0:
		return byPressure
	case byPressure == 0:
		return byCount
	}
	return min(byCount, byPressure)
}

// shrunkIdle is the idle timeout past half of a limit by past (0 at half,
// 1 at the limit and beyond): from idleAtHalf down to minIdle.
func shrunkIdle(past float64) time.Duration {
	if past >= 1 {
		return minIdle
	}
	return idleAtHalf - time.Duration(past*float64(idleAtHalf-minIdle))
}

// closeIdle closes the connections that have had no RPC in flight for
// longer than idleTimeout at the count open and pressure p, the one idle
// longest first, each close counted and its timeout recomputed from the
// count left, at most idleClosesPerTick of them. Only Run calls it.
func (c *Controller) closeIdle(p float64) {
	c.mu.Lock()
	limit := idleTimeout(len(c.conns), c.limits.MaxConnections, p)
	if limit == 0 {
		c.mu.Unlock()
		return
	}
	now := c.now()
	idle := c.idleConns[:0]
	for tc := range c.conns {
		if tc.calls == 0 && now.Sub(tc.idleSince) > limit {
			idle = append(idle, tc)
		}
	}
	slices.SortFunc(idle, func(a, b *trackedConn) int { return a.idleSince.Compare(b.idleSince) })
	n := 0
	for _, tc := range idle {
		limit = idleTimeout(len(c.conns), c.limits.MaxConnections, p)
		if n == idleClosesPerTick || limit == 0 || now.Sub(tc.idleSince) <= limit {
			break
		}
		c.forget(tc)
		idle[n] = tc
		n++
	}
	closing := idle[:n]
	c.mu.Unlock()
	for _, tc := range closing {
		c.events.connEvicted(LimitIdleTimeout)
		// As at eviction: no RPC is lost, and a gRPC client reconnects
		// when it next needs the connection.
		tc.goAwayAndClose()
	}
	clear(idle)
	c.idleConns = idle[:0]
}
