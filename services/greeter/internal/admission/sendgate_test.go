package admission

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestRoomToQueue: a message may be queued while the connection's unsent
// responses, weighed as messages of its size, fit the budget (less under
// memory pressure); beyond it, a stream may still hand a few messages past
// what the connection has written since it last handed.
func TestRoomToQueue(t *testing.T) {
	const budget = 64 << 10
	for _, tc := range []struct {
		name                 string
		unsent, wire         int64
		written, from, recnt int64
		pressure             float64
		want                 bool
	}{
		{name: "nothing unsent: even a message over the budget", unsent: 0, wire: 1 << 20, recnt: 1 << 20, want: true},
		{name: "small messages within the budget", unsent: 4000, wire: 20, recnt: 4000, want: true},
		{name: "small messages over the budget", unsent: 8 << 10, wire: 20, recnt: 1000, want: false},
		{name: "large messages weigh less per byte", unsent: 32 << 10, wire: 4096, recnt: 1000, want: true},
		{name: "over the budget, the stream's first few messages", unsent: 8 << 10, wire: 20, recnt: 0, want: true},
		{name: "over the budget, the stream's allowance used", unsent: 8 << 10, wire: 20, recnt: gateAllowance - 10, want: false},
		{name: "over the budget, what it handed is written since", unsent: 8 << 10, wire: 20, written: 1000, recnt: 1000, want: true},
		{name: "over the budget, less written than it handed", unsent: 8 << 10, wire: 20, written: 999, recnt: 1000, want: false},
		{name: "memory pressure shrinks the budget", unsent: 16 << 10, wire: 4096, recnt: 1000, pressure: 1, want: false},
		{name: "half the budget held: the whole budget", unsent: 16 << 10, wire: 4096, recnt: 1000, pressure: 0.5, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(Limits{MaxRPCMemory: 100 << 20, MaxQueuedPerConnection: budget}, testMetrics(), nil, nil)
			c.rpcMemory.Store(int64(tc.pressure * float64(c.limits.MaxRPCMemory)))
			var g sendGate
			g.unsent.Store(tc.unsent)
			g.written.Store(tc.written)
			sg := &streamGate{from: tc.from, recent: tc.recnt}
			if got := c.roomToQueue(&g, sg, tc.wire); got != tc.want {
				t.Errorf("roomToQueue = %v, want %v", got, tc.want)
			}
		})
	}
}

// writeConn is an accepted connection whose writes all succeed.
type writeConn struct{ *fakeConn }

func (w writeConn) Write(b []byte) (int, error) { return len(b), nil }

// sendStream is a server stream whose sends are queued nowhere, counted.
type sendStream struct {
	grpc.ServerStream
	ctx  context.Context
	sent atomic.Int64
}

func (s *sendStream) Context() context.Context { return s.ctx }
func (s *sendStream) SendMsg(any) error        { s.sent.Add(1); return nil }

// TestSendGate: a handler sending small messages on a connection that
// writes nothing waits once the connection's budget is queued, as a send
// blocked by flow control (the reaper sees it blocked); it goes on as the
// connection writes; cancelled while it waits, it fails, and what it queued
// stops counting, as grpc-go drops it.
func TestSendGate(t *testing.T) {
	const budget = 16 << 10
	services := map[string]grpc.ServiceInfo{"acme.greeter.v1.GreeterService": {Methods: []grpc.MethodInfo{{Name: "SayHelloStream", IsServerStream: true}}}}
	c := New(Limits{MaxRPCMemory: 1 << 30, MaxQueuedPerConnection: budget}, testMetrics(), nil, services)
	tc := c.admitConn(writeConn{connFrom("127.0.1.1", 1)})
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx, _, err := c.Admit(parent, &peer.Peer{Addr: tc.RemoteAddr()}, testMethod)
	if err != nil {
		t.Fatal(err)
	}
	cl := ctx.Value(callKey{}).(*call)
	if cl.conn != tc {
		t.Fatal("the call is not on its connection")
	}
	ss := &sendStream{ctx: ctx}
	msg := wrapperspb.String("a")
	handlerErr := make(chan error, 1)
	go func() {
		handlerErr <- c.InterceptStream(nil, ss, nil, func(_ any, s grpc.ServerStream) error {
			for {
				if err := s.SendMsg(msg); err != nil {
					return err
				}
			}
		})
	}()

	blocked := func() int64 {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; {
			n := ss.sent.Load()
			time.Sleep(20 * time.Millisecond)
			if ss.sent.Load() == n && cl.sendingSince.Load() != 0 {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("the handler did not wait: %d messages sent", n)
			}
		}
	}
	first := blocked()
	wire := wireSize(msg)
	if want := budget/(wire+messageOverhead) + gateAllowance/wire; first < want/2 || first > want+2 {
		t.Errorf("waited after %d messages of %d wire bytes, want about %d (budget %d)", first, wire, want, budget)
	}
	if _, err := tc.Write(make([]byte, 64*wire)); err != nil {
		t.Fatal(err)
	}
	if second := blocked(); second <= first {
		t.Errorf("the connection wrote %d messages' worth and the handler sent %d more", 64, second-first)
	}
	cancel()
	select {
	case err := <-handlerErr:
		if status.Code(err) != codes.Canceled {
			t.Errorf("handler cancelled while its send waited returned %v, want CANCELLED", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a send waiting on the gate did not end with its stream")
	}
	if got := tc.gate.unsent.Load(); got != 0 {
		t.Errorf("unsent after the stream was cancelled: %d bytes, want 0", got)
	}
	// Another stream on the connection is not held by what is gone.
	if !c.roomToQueue(&tc.gate, &streamGate{}, wire) {
		t.Error("a new stream may not queue on the connection")
	}
}
