package admission

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// The send gate bounds what grpc-go queues for a connection before it is
// queued. grpc-go bounds a stream's queue of unsent responses by their bytes
// (its write quota), not by what it holds for each message beside them (the
// frame item, its header, the buffer slice), which for small messages is
// many times their bytes: a burst of streams to a client that grants no
// flow-control window grew the process faster than any memory sample could
// see. The gate estimates, per connection, the bytes handed to grpc-go and
// not yet written to the socket (the listener sees every write), and makes a
// stream's SendMsg wait while that estimate, weighed as messages of the size
// being sent, is over the connection's budget, which shrinks as memory fills.
//
// The estimate may drift, both ways: messages of a stream the client resets
// are dropped unwritten, compression changes their size, and HTTP/2 frames
// that carry no message are written too. So that drift can never hold a
// stream for good, a stream may always hand a few messages (gateAllowance)
// beyond what the connection has written since it last handed its own: one
// whose responses go out is slowed, never stopped, by its siblings' queue.
const (
	// QueuedPerConnection is the memory grpc-go may hold, at most, in
	// responses queued for one connection before its streams' sends wait
	// (Limits.MaxQueuedPerConnection), at a memory pressure of half the
	// budget or less; it shrinks as memory fills, down to a tenth at the
	// budget, as the timeouts do.
	QueuedPerConnection = 256 << 10
	// messageOverhead is what grpc-go holds for a queued message besides
	// its bytes.
	messageOverhead = 256
	// wireOverhead is what a message takes on the wire besides its
	// encoding: the gRPC length prefix and, at least, a DATA frame header.
	wireOverhead = 5 + 9
	// gateAllowance is what a stream may hand beyond what its connection
	// has written since it last handed (wire bytes): a handful of small
	// messages.
	gateAllowance = 256
	// droppedAtMost is the most grpc-go can drop of a reset stream's queue,
	// in the gate's wire bytes: its write quota (64 KiB of prefixes and
	// messages), and a frame header for each message of the smallest.
	droppedAtMost = 64 << 10 * 3
	// gateRecheck is how often a waiting send looks again whatever its
	// connection writes: the budget grows back as memory is freed.
	gateRecheck = 500 * time.Millisecond
)

// sendGate is a connection's part of the gate.
type sendGate struct {
	// unsent estimates the wire bytes handed to grpc-go and not yet
	// written; written counts the bytes written to the socket.
	unsent  atomic.Int64
	written atomic.Int64
	waiters atomic.Int32
	mu      sync.Mutex
	wake    chan struct{} // closed at the next write; nil without waiters
}

// wrote notes n bytes written to the socket and wakes the waiting sends.
func (g *sendGate) wrote(n int64) {
	g.written.Add(n)
	g.drop(n)
	if g.waiters.Load() > 0 {
		g.mu.Lock()
		if g.wake != nil {
			close(g.wake)
			g.wake = nil
		}
		g.mu.Unlock()
	}
}

// drop takes n bytes off the unsent estimate, never below 0.
func (g *sendGate) drop(n int64) {
	for {
		u := g.unsent.Load()
		if u == 0 || g.unsent.CompareAndSwap(u, max(0, u-n)) {
			return
		}
	}
}

// streamGate is a stream's part of the gate; only its sender touches it
// (grpc-go forbids concurrent SendMsg calls on a stream), but for handed,
// which release reads once the stream has ended.
type streamGate struct {
	from   int64 // the connection's written when the stream last caught up
	recent int64 // wire bytes handed since
	handed atomic.Int64
}

// wireSize is what m takes on the wire, at least: its encoding (if it is a
// protobuf message) and wireOverhead.
func wireSize(m any) int64 {
	if pm, ok := m.(proto.Message); ok {
		return int64(proto.Size(pm)) + wireOverhead
	}
	return wireOverhead
}

// roomToQueue reports whether a stream with sg may hand a message of wire
// bytes to grpc-go on a connection with g: the connection's queue, weighed
// as messages of this size, stays within its budget; or the stream hands
// no more than gateAllowance beyond what the connection wrote since it
// last caught up.
func (c *Controller) roomToQueue(g *sendGate, sg *streamGate, wire int64) bool {
	written := g.written.Load()
	if written-sg.from >= sg.recent {
		sg.from, sg.recent = written, 0
	}
	unsent := g.unsent.Load()
	if unsent == 0 || sg.recent+wire <= gateAllowance {
		return true
	}
	budget := int64(float64(c.limits.MaxQueuedPerConnection) * shrink(c.pressure()))
	return (unsent+wire)/wire*(wire+messageOverhead) <= budget
}

// waitToQueue waits until a stream with sg may hand m to grpc-go on a
// connection with g (roomToQueue), and counts it as handed; it fails only
// when the stream's context ends first.
func (c *Controller) waitToQueue(ctx context.Context, g *sendGate, sg *streamGate, m any) (int64, error) {
	wire := wireSize(m)
	if !c.roomToQueue(g, sg, wire) {
		var timer *time.Timer
		for {
			g.waiters.Add(1)
			g.mu.Lock()
			if g.wake == nil {
				g.wake = make(chan struct{})
			}
			wake := g.wake
			g.mu.Unlock()
			// Looked at again once registered, or a write in between
			// would wake no one.
			if c.roomToQueue(g, sg, wire) {
				g.waiters.Add(-1)
				break
			}
			if timer == nil {
				timer = time.NewTimer(gateRecheck)
				defer timer.Stop()
			} else {
				timer.Reset(gateRecheck)
			}
			select {
			case <-wake:
			case <-timer.C:
			case <-ctx.Done():
				g.waiters.Add(-1)
				return 0, status.FromContextError(ctx.Err()).Err()
			}
			g.waiters.Add(-1)
			if c.roomToQueue(g, sg, wire) {
				break
			}
		}
	}
	sg.recent += wire
	sg.handed.Add(wire)
	g.unsent.Add(wire)
	return wire, nil
}

// pressure is the memory pressure at the last sample: what RPCs hold over
// the budget, 0 without one.
func (c *Controller) pressure() float64 {
	if c.limits.MaxRPCMemory <= 0 {
		return 0
	}
	return float64(c.rpcMemory.Load()) / float64(c.limits.MaxRPCMemory)
}
