package admission

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// fakeConn is an accepted connection from addr.
type fakeConn struct {
	net.Conn
	addr   net.Addr
	closed bool
}

func (f *fakeConn) RemoteAddr() net.Addr { return f.addr }
func (f *fakeConn) Close() error         { f.closed = true; return nil }

func connFrom(ip string, port int) *fakeConn {
	return &fakeConn{addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: port}}
}

// clock is a Controller's time, moved by the test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newLimitedController(l Limits) (*Controller, *clock) {
	services := map[string]grpc.ServiceInfo{
		"acme.greeter.v1.GreeterService": {Methods: []grpc.MethodInfo{{Name: "SayHello"}}},
		"grpc.health.v1.Health":          {Methods: []grpc.MethodInfo{{Name: "Check"}, {Name: "Watch", IsServerStream: true}}},
	}
	c := New(l, testMetrics(), nil, services)
	clk := &clock{t: time.Unix(1e9, 0)}
	c.now = clk.now
	return c, clk
}

// TestConnectionEviction: at a connection limit, a newcomer takes the place
// of the connection idle longest from its own address (at the per-address
// limit) or from the address holding the most (at the server's), never of
// one with an RPC in flight or one just accepted; with none idle, it is
// refused.
func TestConnectionEviction(t *testing.T) {
	c, clk := newLimitedController(Limits{MaxConnections: 5, MaxConnectionsPerClient: 3})
	admit := func(conn *fakeConn) *trackedConn {
		tc := c.admitConn(conn)
		clk.t = clk.t.Add(time.Millisecond)
		return tc
	}
	crowd := []*fakeConn{connFrom("127.0.1.1", 1), connFrom("127.0.1.1", 2), connFrom("127.0.1.1", 3), connFrom("127.0.1.2", 1)}
	var first *trackedConn
	for i, conn := range crowd {
		tc := admit(conn)
		if tc == nil {
			t.Fatalf("connection %d refused under the limits", i)
		}
		if i == 0 {
			first = tc
		}
	}
	// Just accepted, they may be about to send their first RPC.
	if admit(connFrom("127.0.1.1", 4)) != nil {
		t.Fatal("a newcomer took the place of a connection accepted a moment ago")
	}
	if got := testutil.ToFloat64(c.m.ConnectionsRefused.WithLabelValues(LimitMaxConnectionsPerClient)); got != 1 {
		t.Errorf("refusals counted: %v, want 1", got)
	}

	clk.t = clk.t.Add(2 * minIdle)
	// The oldest connection of 127.0.1.1 is busy.
	if _, _, err := c.Admit(context.Background(), &peer.Peer{Addr: first.RemoteAddr()}, "/acme.greeter.v1.GreeterService/SayHello"); err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if admit(connFrom("127.0.1.1", 5)) == nil {
		t.Fatal("a newcomer at its address's limit was refused while that address had idle connections")
	}
	if got := closed(crowd); len(got) != 1 || got[0] != "127.0.1.1:2" {
		t.Errorf("evicted %v, want [127.0.1.1:2]: the idle-longest of its own address, not the busy one", got)
	}
	if admit(connFrom("127.0.2.1", 1)) == nil || len(closed(crowd)) != 1 {
		t.Fatal("under the server's limit, a newcomer evicted or was refused")
	}
	// The server's limit: the address holding the most (127.0.1.1, three)
	// gives way, its connection idle longest (:3; :1 is busy, :5 new).
	if admit(connFrom("127.0.2.2", 1)) == nil {
		t.Fatal("a newcomer was refused while idle connections held every place")
	}
	if got := closed(crowd); len(got) != 2 || got[1] != "127.0.1.1:3" {
		t.Errorf("evicted %v, want 127.0.1.1:3 next", got)
	}
	for limit, want := range map[string]float64{LimitMaxConnectionsPerClient: 1, LimitMaxConnections: 1} {
		if got := testutil.ToFloat64(c.m.ConnectionsEvicted.WithLabelValues(limit)); got != want {
			t.Errorf("evictions at %s: %v, want %v", limit, got, want)
		}
	}
	c.mu.Lock()
	n := len(c.conns)
	c.mu.Unlock()
	if n != 5 {
		t.Errorf("%d connections counted, want 5", n)
	}
}

func closed(conns []*fakeConn) []string {
	var out []string
	for _, c := range conns {
		if c.closed {
			out = append(out, c.addr.String())
		}
	}
	return out
}

// TestHealthEviction: at the health limit, a probe takes the place of a
// held health call whose request never came, from the client holding the
// most; calls whose request came are never ended for it.
func TestHealthEviction(t *testing.T) {
	c, clk := newLimitedController(Limits{MaxHealthStreams: 3, MaxHealthPerClient: 2})
	check := func(ip string) (context.Context, error) {
		clk.t = clk.t.Add(time.Millisecond) // "oldest" is the order of the calls
		ctx, _, err := c.Admit(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 1}}, "/grpc.health.v1.Health/Check")
		return ctx, err
	}
	heldA1, _ := check("127.0.1.1")
	heldA2, _ := check("127.0.1.1")
	answered, _ := check("127.0.1.2")
	answered.Value(callKey{}).(*call).received.Store(true)
	probe, err := check("127.0.0.9")
	if err != nil {
		t.Fatalf("a probe was refused while a crowd held health calls: %v", err)
	}
	if heldA1.Err() == nil || !errors.Is(context.Cause(heldA1), errHealthEvicted) {
		t.Errorf("the oldest held call of the client holding the most: %v, want ended (%v)", context.Cause(heldA1), errHealthEvicted)
	}
	if heldA2.Err() != nil || answered.Err() != nil || probe.Err() != nil {
		t.Errorf("ended beyond the one: %v %v %v", heldA2.Err(), answered.Err(), probe.Err())
	}
	// The counts stay within the limit: the evicted call's place was given back.
	c.mu.Lock()
	n := c.health[healthCheck]
	c.mu.Unlock()
	if n != 3 {
		t.Errorf("health checks counted: %d, want 3", n)
	}
	// Every remaining call answered or a probe: the next is refused.
	probe.Value(callKey{}).(*call).received.Store(true)
	heldA2.Value(callKey{}).(*call).received.Store(true)
	if _, err := check("127.0.0.10"); err == nil {
		t.Error("admitted with every health call's request arrived: want refused")
	}
}

// TestWaitingShare: once Limits.MaxWaiting RPCs wait for their request, a
// client waiting on its share or more is refused RESOURCE_EXHAUSTED, while
// another client, and the same client once its requests arrive, are
// admitted.
func TestWaitingShare(t *testing.T) {
	c, _ := newLimitedController(Limits{MaxWaiting: 4})
	admit := func(ip string) (context.Context, error) {
		ctx, _, err := c.Admit(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 1}}, "/acme.greeter.v1.GreeterService/SayHello")
		return ctx, err
	}
	var held []context.Context
	for i := range 4 {
		ctx, err := admit("127.0.1.1")
		if err != nil {
			t.Fatalf("call %d, under MaxWaiting: %v", i, err)
		}
		held = append(held, ctx)
	}
	if _, err := admit("127.0.1.1"); status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "request has not arrived") {
		t.Errorf("a fifth waiting call from the one client: %v, want RESOURCE_EXHAUSTED naming the requests that have not arrived", err)
	}
	if _, err := admit("127.0.1.2"); err != nil {
		t.Errorf("another client, waiting on none: %v", err)
	}
	// Two clients now: a share of 2. The first's requests arrive.
	for _, ctx := range held[:3] {
		c.receivedRequest(ctx.Value(callKey{}).(*call))
	}
	if _, err := admit("127.0.1.1"); err != nil {
		t.Errorf("the first client once its requests arrived: %v", err)
	}
	if got := c.waiting.Load(); got != 3 {
		t.Errorf("%d calls counted waiting, want 3", got)
	}
}

// TestWaitingMakesRoom: once Limits.MaxWaiting RPCs wait for their
// request, a client within its share is admitted in the place of the
// oldest call, waiting makeRoomAfter or more, of the client waiting on the
// most beyond its share, so that the count stays at MaxWaiting however
// many clients arrive; a call that started a moment ago is not ended, and
// without one to end the newcomer is admitted as before.
func TestWaitingMakesRoom(t *testing.T) {
	c, clk := newLimitedController(Limits{MaxWaiting: 4})
	admit := func(ip string) (*call, error) {
		ctx, _, err := c.Admit(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 1}}, "/acme.greeter.v1.GreeterService/SayHello")
		if err != nil {
			return nil, err
		}
		return ctx.Value(callKey{}).(*call), nil
	}
	var crowd []*call
	for i := range 4 {
		cl, err := admit("127.0.1.1")
		if err != nil {
			t.Fatalf("call %d, under MaxWaiting: %v", i, err)
		}
		crowd = append(crowd, cl)
		clk.t = clk.t.Add(time.Millisecond)
	}
	// A moment later: the crowd's calls may still be getting their
	// requests, none is ended, the newcomer is admitted on top.
	if _, err := admit("127.0.2.1"); err != nil {
		t.Fatalf("a newcomer within its share: %v", err)
	}
	for i, cl := range crowd {
		if cl.reaped.Load() {
			t.Fatalf("crowd call %d ended %s after it started", i, time.Duration(4-i)*time.Millisecond)
		}
	}
	clk.t = clk.t.Add(makeRoomAfter)
	for i, ip := range []string{"127.0.3.1", "127.0.4.1"} {
		if _, err := admit(ip); err != nil {
			t.Fatalf("newcomer %d within its share: %v", i, err)
		}
		if cl := crowd[i]; !cl.reaped.Load() || !errors.Is(context.Cause(cl.ctx), errWaitingEvicted) {
			t.Errorf("newcomer %d: the crowd's call %d not ended (%v), want the oldest ended for it", i, i, context.Cause(cl.ctx))
		}
	}
	if got := c.waiting.Load(); got != 5 {
		t.Errorf("%d calls counted waiting, want 5: the 4 of MaxWaiting and the one admitted on top", got)
	}
	if n := testutil.ToFloat64(c.m.StreamsReaped.WithLabelValues(LimitWaiting)); n != 2 {
		t.Errorf("counted %v ended at %s, want 2", n, LimitWaiting)
	}
}

// TestHolderEviction: at a connection limit, a connection whose every RPC
// has waited a second or more for its request gives way to a newcomer as
// an idle one does; one with an RPC whose request came, or one whose RPC
// started a moment ago, does not.
func TestHolderEviction(t *testing.T) {
	c, clk := newLimitedController(Limits{MaxConnections: 3})
	conns := []*fakeConn{connFrom("127.0.1.1", 1), connFrom("127.0.1.2", 1), connFrom("127.0.1.3", 1)}
	var calls []*call
	for _, conn := range conns {
		tc := c.admitConn(conn)
		ctx, _, err := c.Admit(context.Background(), &peer.Peer{Addr: tc.RemoteAddr()}, "/acme.greeter.v1.GreeterService/SayHello")
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, ctx.Value(callKey{}).(*call))
	}
	// The first connection's request came; the others' never does.
	c.receivedRequest(calls[0])
	if c.admitConn(connFrom("127.0.2.1", 1)) != nil {
		t.Fatal("a newcomer took the place of a connection whose RPC started a moment ago")
	}
	clk.t = clk.t.Add(2 * minIdle)
	if c.admitConn(connFrom("127.0.2.1", 2)) == nil {
		t.Fatal("a newcomer was refused while connections held RPCs whose request never came")
	}
	if got := closed(conns); len(got) != 1 || got[0] == "127.0.1.1:1" {
		t.Errorf("evicted %v, want one holder, never 127.0.1.1:1, whose request came", got)
	}
}

// TestFreshEviction: at the server's limit with no connection idle a second,
// a newcomer takes the place of a connection with no RPC in flight just
// accepted, the oldest of the address holding the most, if that address
// holds at least two more than the newcomer's: a crowd dialing faster than
// a second does not shut the door. Never a busy one, never at the
// per-address limit, never between addresses holding about as many.
func TestFreshEviction(t *testing.T) {
	for _, tc := range []struct {
		name     string
		limits   Limits
		crowd    []string // addresses, accepted a millisecond apart
		busy     int      // the first busy ones: an RPC in flight
		newcomer string
		want     string // the connection closed for it, "" if refused
	}{
		{"a new address, the crowd's oldest", Limits{MaxConnections: 4}, []string{"127.0.1.1", "127.0.1.1", "127.0.1.1", "127.0.1.2"}, 0, "127.0.9.9", "127.0.1.1:1"},
		{"the busy one is skipped", Limits{MaxConnections: 4}, []string{"127.0.1.1", "127.0.1.1", "127.0.1.1", "127.0.1.2"}, 1, "127.0.9.9", "127.0.1.1:2"},
		{"two ahead is enough", Limits{MaxConnections: 4}, []string{"127.0.1.1", "127.0.1.1", "127.0.1.2", "127.0.1.2"}, 0, "127.0.9.9", "127.0.1.1:1"},
		{"one ahead is not", Limits{MaxConnections: 4}, []string{"127.0.1.1", "127.0.1.1", "127.0.1.2", "127.0.1.2"}, 0, "127.0.1.2", ""},
		{"all busy", Limits{MaxConnections: 2}, []string{"127.0.1.1", "127.0.1.1"}, 2, "127.0.9.9", ""},
		{"at the address's own limit", Limits{MaxConnections: 10, MaxConnectionsPerClient: 2}, []string{"127.0.1.1", "127.0.1.1"}, 0, "127.0.1.1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, clk := newLimitedController(tc.limits)
			var conns []*fakeConn
			for i, ip := range tc.crowd {
				conn := connFrom(ip, i+1)
				conns = append(conns, conn)
				tracked := c.admitConn(conn)
				if tracked == nil {
					t.Fatalf("connection %d refused", i)
				}
				if i < tc.busy {
					if _, _, err := c.Admit(context.Background(), &peer.Peer{Addr: tracked.RemoteAddr()}, "/acme.greeter.v1.GreeterService/SayHello"); err != nil {
						t.Fatal(err)
					}
				}
				clk.t = clk.t.Add(time.Millisecond)
			}
			admitted := c.admitConn(connFrom(tc.newcomer, 99)) != nil
			got := closed(conns)
			switch {
			case tc.want == "" && (admitted || len(got) > 0):
				t.Errorf("admitted %v, closed %v; want refused, none closed", admitted, got)
			case tc.want != "" && (!admitted || len(got) != 1 || got[0] != tc.want):
				t.Errorf("admitted %v, closed %v; want admitted in the place of %s", admitted, got, tc.want)
			}
		})
	}
}
