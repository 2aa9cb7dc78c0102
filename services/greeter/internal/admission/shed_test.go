package admission

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
)

const testMethod = "/acme.greeter.v1.GreeterService/SayHelloStream"

// newTestController is a Controller with budget, whose memory reading is
// what *held says.
func newTestController(t *testing.T, budget int64, held *int64) *Controller {
	t.Helper()
	services := map[string]grpc.ServiceInfo{"acme.greeter.v1.GreeterService": {Methods: []grpc.MethodInfo{{Name: "SayHelloStream", IsServerStream: true}}}}
	c := New(Limits{MaxRPCMemory: budget}, testMetrics(), nil, services)
	c.readMemory = func() (int64, uint64) { return *held, 0 }
	c.baseline = 0
	return c
}

// testMetrics are fresh, unregistered metrics (not package metrics, which
// imports this one).
func testMetrics() Metrics {
	counter := func() *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c"}, []string{"limit"})
	}
	gauge := func() prometheus.Gauge { return prometheus.NewGauge(prometheus.GaugeOpts{Name: "g"}) }
	return Metrics{
		StreamsRefused: counter(), StreamsReaped: counter(), ConnectionsRefused: counter(), ConnectionsEvicted: counter(),
		RPCMemory: gauge(), MemoryPressure: gauge(), HealthStreams: gauge(), Connections: gauge(),
	}
}

// tapFrom runs the tap handle for an RPC from ip and returns its call.
func tapFrom(t *testing.T, c *Controller, ip string) *call {
	t.Helper()
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 1}})
	ctx, err := c.TapHandle(ctx, &tap.Info{FullMethodName: testMethod})
	if err != nil {
		t.Fatalf("TapHandle returned %v: it must never refuse through grpc-go", err)
	}
	return ctx.Value(callKey{}).(*call)
}

// sampleNow samples the memory as the reaper does.
func sampleNow(c *Controller) float64 {
	last, gcs := time.Now(), uint64(0)
	return c.sample(&last, &gcs)
}

// TestAdmission: a lone client may take the whole budget, then is refused
// RESOURCE_EXHAUSTED; a second client within its share is admitted past the
// budget; past a quarter over it, everyone is refused UNAVAILABLE.
func TestAdmission(t *testing.T) {
	const budget = 64 * RPCCost
	var held int64
	c := newTestController(t, budget, &held)
	for i := range 64 {
		if cl := tapFrom(t, c, "127.0.0.2"); cl.refusal != nil {
			t.Fatalf("RPC %d of a lone client within the budget refused: %v", i, cl.refusal)
		}
	}
	held = budget
	sampleNow(c)
	if cl := tapFrom(t, c, "127.0.0.2"); status.Code(cl.refusal) != codes.ResourceExhausted {
		t.Errorf("a lone client over the budget: %v, want RESOURCE_EXHAUSTED", cl.refusal)
	}
	if cl := tapFrom(t, c, "127.0.0.3"); cl.refusal != nil {
		t.Errorf("a second client within its share, server over its budget: %v, want admitted", cl.refusal)
	}
	held = budget * 2
	sampleNow(c)
	if cl := tapFrom(t, c, "127.0.0.4"); status.Code(cl.refusal) != codes.Unavailable {
		t.Errorf("anyone, server at twice its budget: %v, want UNAVAILABLE", cl.refusal)
	}
}

// TestAdmissionRereads: an RPC that only the estimates of the RPCs admitted
// since the last sample would refuse is decided on a fresh reading of the
// memory, at most every rereadEvery; what is measured refuses as before.
func TestAdmissionRereads(t *testing.T) {
	const budget = 64 * RPCCost
	var held int64
	c := newTestController(t, budget, &held)
	now := time.Now()
	c.now = func() time.Time { return now }
	sampleNow(c)
	tap := func(want codes.Code, why string) {
		t.Helper()
		cl := tapFrom(t, c, "127.0.0.2")
		if got := status.Code(cl.refusal); got != want {
			t.Fatalf("%s: %v, want %v", why, cl.refusal, want)
		}
		if cl.refusal != nil {
			c.release(cl)
		}
	}
	for range 64 {
		tap(codes.OK, "a lone client within the budget, as estimated")
	}
	// The 64 hold half of what they are estimated to, so far.
	held = budget / 2
	tap(codes.ResourceExhausted, "estimated full, read less than rereadEvery ago")
	now = now.Add(rereadEvery)
	tap(codes.OK, "estimated full, measured half full")
	for range 31 {
		tap(codes.OK, "the measured half's room, as estimated")
	}
	tap(codes.ResourceExhausted, "estimated full again, read less than rereadEvery ago")
	held = budget
	now = now.Add(rereadEvery)
	tap(codes.ResourceExhausted, "measured full")
}

// TestShedOrder: over the budget, the client holding the most gives way,
// its RPCs whose request has not arrived first, then the stalled, then the
// newest; the other client keeps all of its.
func TestShedOrder(t *testing.T) {
	const budget = 32 * RPCCost
	var held int64
	c := newTestController(t, budget, &held)
	var big []*call
	for i := range 24 {
		cl := tapFrom(t, c, "127.0.0.2")
		cl.received.Store(i >= 4) // the first 4 never sent their request
		cl.start = cl.start.Add(time.Duration(i)*time.Millisecond - 2*requestOnItsWay)
		big = append(big, cl)
	}
	// One whose request may be on its way is not taken, young as it is.
	young := tapFrom(t, c, "127.0.0.2")
	var small []*call
	for range 4 {
		cl := tapFrom(t, c, "127.0.0.3")
		cl.received.Store(true)
		small = append(small, cl)
	}
	// 29 RPCs estimated, measured as 40 against a budget of 32: the
	// biggest holder holds 25/29 of 40, over its share of 16 by more than
	// the excess of 8, which is about 6 of its RPCs as estimated.
	held = 40 * RPCCost
	sampleNow(c)
	if !c.shed() {
		t.Fatal("nothing shed over the budget")
	}
	for i, cl := range big[:4] {
		if !cl.shed.Load() {
			t.Errorf("the biggest holder's RPC %d, without its request, was not shed first", i)
		}
	}
	for _, cl := range small {
		if cl.shed.Load() {
			t.Error("an RPC of the client within its share was shed")
		}
	}
	if young.shed.Load() {
		t.Error("an RPC whose request may be on its way was shed")
	}
	if !big[23].shed.Load() || big[4].shed.Load() {
		t.Error("after those without their request, the oldest was shed rather than the newest")
	}
	// Those without their request are cancelled a tick later, the others
	// at once.
	for i, cl := range big {
		if want := cl.shed.Load() && cl.received.Load(); want != (context.Cause(cl.ctx) == shedStatus) {
			t.Errorf("RPC %d: shed %v, received %v, context cause %v", i, cl.shed.Load(), cl.received.Load(), context.Cause(cl.ctx))
		}
	}
	c.cancelShedUnread()
	for _, cl := range append(big, small...) {
		if cl.shed.Load() != (context.Cause(cl.ctx) == shedStatus) {
			t.Errorf("shed %v, context cause %v", cl.shed.Load(), context.Cause(cl.ctx))
		}
	}
}

// TestShedBeforeRead: a stream shed before its handler reads its request,
// or while it reads it, is answered RESOURCE_EXHAUSTED, not the CANCELLED
// grpc-go answers a read cut short by the cancellation with.
func TestShedBeforeRead(t *testing.T) {
	var held int64
	c := newTestController(t, 1<<20, &held)
	for _, tc := range []struct {
		name      string
		shedAfter bool // shed while the read was under way
	}{
		{"before the read", false},
		{"during the read", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := tapFrom(t, c, "127.0.0.2")
			reads := 0
			s := &watchedStream{ServerStream: fakeStream{recv: func() error {
				reads++
				if tc.shedAfter {
					cl.shed.Store(true)
				}
				return nil
			}}, c: c, call: cl}
			if !tc.shedAfter {
				cl.shed.Store(true)
			}
			err := s.RecvMsg(nil)
			if status.Code(err) != codes.ResourceExhausted {
				t.Errorf("RecvMsg of a shed stream: %v, want RESOURCE_EXHAUSTED", err)
			}
			if want := map[bool]int{false: 0, true: 1}[tc.shedAfter]; reads != want {
				t.Errorf("%d reads, want %d", reads, want)
			}
		})
	}
}

type fakeStream struct {
	grpc.ServerStream
	recv func() error
}

func (f fakeStream) RecvMsg(any) error { return f.recv() }

func TestScaled(t *testing.T) {
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{
		{0, 10 * time.Second}, {0.5, 10 * time.Second}, {0.75, 5500 * time.Millisecond}, {1, time.Second}, {3, time.Second},
	} {
		if got := scaled(10*time.Second, tc.p); got != tc.want {
			t.Errorf("scaled(10s, %v) = %s, want %s", tc.p, got, tc.want)
		}
	}
}

// TestStalledChargesAreNotAdmissions: charging the sends found blocked their
// stall cost attributes memory the last sample already measured; a burst of
// them does not count again as admitted since, which would refuse every
// client until the next sample.
func TestStalledChargesAreNotAdmissions(t *testing.T) {
	const budget = 256 * RPCCost
	var held int64
	c := newTestController(t, budget, &held)
	now := time.Now()
	c.now = func() time.Time { return now }
	var stuck []*call
	for range 64 {
		cl := tapFrom(t, c, "127.0.0.2")
		c.receivedRequest(cl)
		stuck = append(stuck, cl)
	}
	held = budget / 2
	sampleNow(c)
	for _, cl := range stuck {
		cl.sendingSince.Store(now.Add(-time.Second).UnixNano())
	}
	c.reap(0.5)
	if !stuck[0].stalled {
		t.Fatal("a send blocked a second was not found stalled")
	}
	if cl := tapFrom(t, c, "127.0.0.3"); cl.refusal != nil {
		t.Errorf("another client, memory measured half the budget, right after the stalled sends were charged: %v", cl.refusal)
	}
}

// TestHardLimitMakesRoom: past the hard limit, a client within its share
// is admitted when a call of a client beyond its share has waited
// makeRoomAfter for a request that has not come, and that call is ended
// (the oldest, once); without such a call, or beyond its share, it is
// refused UNAVAILABLE as everyone is.
func TestHardLimitMakesRoom(t *testing.T) {
	const budget = 64 * RPCCost
	var held int64
	c := newTestController(t, budget, &held)
	now := time.Now()
	c.now = func() time.Time { return now }
	var crowd []*call
	for i := range 64 {
		cl := tapFrom(t, c, "127.0.1.1")
		cl.start = now.Add(time.Duration(i) * time.Millisecond)
		crowd = append(crowd, cl)
	}
	crowd[10].received.Store(true)
	held = budget * 2
	sampleNow(c)
	tap := func(ip string, want codes.Code, why string) *call {
		t.Helper()
		cl := tapFrom(t, c, ip)
		if got := status.Code(cl.refusal); got != want {
			t.Fatalf("%s: %v, want %v", why, cl.refusal, want)
		}
		return cl
	}
	tap("127.0.0.2", codes.Unavailable, "within its share, the crowd's calls younger than makeRoomAfter")
	now = now.Add(makeRoomAfter + 10*time.Millisecond)
	for i, want := range []int{0, 1, 2} {
		tap("127.0.0.2", codes.OK, fmt.Sprintf("within its share, call %d, a crowd's call waiting", i))
		if cl := crowd[want]; !cl.reaped.Load() || !errors.Is(context.Cause(cl.ctx), errMadeRoom) {
			t.Errorf("call %d: the crowd's call %d (the oldest left) was not ended to make room: %v", i, want, context.Cause(cl.ctx))
		}
	}
	if crowd[3].reaped.Load() || crowd[10].reaped.Load() {
		t.Errorf("more calls were ended than made room, or one whose request came")
	}
	tap("127.0.1.1", codes.Unavailable, "the crowd itself, beyond its share")
	for _, cl := range crowd {
		if !cl.reaped.Load() {
			cl.received.Store(true)
		}
	}
	tap("127.0.0.3", codes.Unavailable, "within its share, every waiting call ended or answered")
}

// TestHeldIsBoundedByCharge: the memory a crowd leaves behind for a moment
// once its calls have ended does not fall on the clients left: a client
// holding two calls, alone, over the budget but under the hard limit, is
// still within its share and admitted.
func TestHeldIsBoundedByCharge(t *testing.T) {
	const budget = 64 * RPCCost
	var held int64
	c := newTestController(t, budget, &held)
	var crowd []*call
	for range 60 {
		crowd = append(crowd, tapFrom(t, c, "127.0.1.1"))
	}
	tapFrom(t, c, "127.0.0.2")
	for _, cl := range crowd {
		c.release(cl)
	}
	held = budget * 11 / 10
	sampleNow(c)
	if cl := tapFrom(t, c, "127.0.0.2"); cl.refusal != nil {
		t.Errorf("the client left after the crowd ended, memory not yet given back: %v, want admitted", cl.refusal)
	}
}
