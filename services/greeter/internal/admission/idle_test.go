package admission

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/peer"
)

func TestIdleTimeout(t *testing.T) {
	for _, tc := range []struct {
		n, max   int
		pressure float64
		want     time.Duration
	}{
		{0, 0, 0, 0},
		{5000, 0, 0, 0}, // no cap
		{0, 2048, 0, 0},
		{1023, 2048, 0.49, 0}, // below half of both
		{1024, 2048, 0, idleAtHalf},
		{1536, 2048, 0, idleAtHalf - (idleAtHalf-minIdle)/2},
		{2048, 2048, 0, minIdle},
		{3000, 2048, 0, minIdle}, // past the cap (lowered at run time, or eviction pending)
		{1, 1, 0, minIdle},
		{1, 2, 0, idleAtHalf},
		// By memory pressure, whatever the count.
		{0, 2048, 0.5, idleAtHalf},
		{10, 0, 0.75, idleAtHalf - (idleAtHalf-minIdle)/2},
		{10, 2048, 1, minIdle},
		{10, 2048, 3, minIdle},
		// The shorter of the two.
		{1536, 2048, 0.5, idleAtHalf - (idleAtHalf-minIdle)/2},
		{1024, 2048, 0.75, idleAtHalf - (idleAtHalf-minIdle)/2},
	} {
		if got := idleTimeout(tc.n, tc.max, tc.pressure); got != tc.want {
			t.Errorf("idleTimeout(%d, %d, %.2f) = %v, want %v", tc.n, tc.max, tc.pressure, got, tc.want)
		}
	}
}

// TestCloseIdle: from half of MaxConnections, or of the memory budget,
// connections with no RPC in flight past the idle timeout at the count and
// the pressure are closed, idle longest first, until the count left
// lengthens the timeout past the idle time of the next; busy ones never;
// at most idleClosesPerTick a pass; each counted and logged.
func TestCloseIdle(t *testing.T) {
	for _, tc := range []struct {
		name      string
		max       int
		idle      int           // connections, accepted a millisecond apart, then idle
		busy      int           // connections with an RPC in flight, accepted before them
		idleFor   time.Duration // after the last was accepted
		pressure  float64
		wantClose int
	}{
		{"below half, idle an hour", 10, 4, 0, time.Hour, 0, 0},
		{"at the cap, idle 2s: the idlest only, the timeout at 9 of 10 being 12.8s", 10, 10, 0, 2 * time.Second, 0, 1},
		{"at the cap, idle 30s: down to where the timeout (60s at 5 of 10) passes 30s", 10, 10, 0, 30 * time.Second, 0, 3},
		{"at the cap, idle an hour: down to under half, where there is no timeout", 10, 10, 0, time.Hour, 0, 6},
		{"at the cap, busy ones kept", 10, 2, 8, time.Hour, 0, 2},
		{"just under the cap, idle under its timeout", 10, 9, 0, 12 * time.Second, 0, 0},
		{"a crowd of thousands: bounded work a pass", 2000, 2000, 0, time.Hour, 0, idleClosesPerTick},
		{"below half, memory at the budget: idle over a second closed", 10, 4, 0, 2 * time.Second, 1, 4},
		{"below half, memory at three quarters, idle 20s: kept (30.5s)", 10, 4, 0, 20 * time.Second, 0.75, 0},
		{"below half, memory at three quarters, idle 40s: closed", 10, 4, 0, 40 * time.Second, 0.75, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, clk := newLimitedController(Limits{MaxConnections: tc.max})
			var buf bytes.Buffer
			c.log = slog.New(slog.NewTextHandler(&buf, nil))
			var busy []*fakeConn
			for i := range tc.busy {
				conn := connFrom("127.0.1.1", i+1)
				busy = append(busy, conn)
				tracked := c.admitConn(conn)
				if _, _, err := c.Admit(context.Background(), &peer.Peer{Addr: tracked.RemoteAddr()}, "/acme.greeter.v1.GreeterService/SayHello"); err != nil {
					t.Fatal(err)
				}
			}
			var idle []*fakeConn
			for i := range tc.idle {
				clk.t = clk.t.Add(time.Millisecond)
				conn := connFrom(fmt.Sprintf("127.0.2.%d", i%50+1), i+1)
				idle = append(idle, conn)
				if c.admitConn(conn) == nil {
					t.Fatalf("connection %d refused", i)
				}
			}
			clk.t = clk.t.Add(tc.idleFor)
			c.closeIdle(tc.pressure)
			if got := closed(busy); len(got) > 0 {
				t.Errorf("closed busy connections %v", got)
			}
			got := closed(idle)
			if len(got) != tc.wantClose {
				t.Fatalf("closed %d, want %d", len(got), tc.wantClose)
			}
			for i, addr := range got {
				if want := idle[i].addr.String(); addr != want {
					t.Errorf("closed %v, want the idlest first: %v at %d", got, want, i)
					break
				}
			}
			if n := testutil.ToFloat64(c.m.ConnectionsEvicted.WithLabelValues(LimitIdleTimeout)); n != float64(tc.wantClose) {
				t.Errorf("counted %v closed at %s, want %d", n, LimitIdleTimeout, tc.wantClose)
			}
			c.mu.Lock()
			open := len(c.conns)
			c.mu.Unlock()
			if want := tc.busy + tc.idle - tc.wantClose; open != want {
				t.Errorf("%d connections counted, want %d", open, want)
			}
			c.events.flush(c.log, 0)
			if logged := strings.Contains(buf.String(), "connections_evicted=map[idle-timeout:"+fmt.Sprint(tc.wantClose)+"]"); logged != (tc.wantClose > 0) {
				t.Errorf("logged %q, want a line counting %d closed only if any were", buf.String(), tc.wantClose)
			}
		})
	}
}

// TestConnectionsPastHardLimit: past the hard memory limit, the count of
// connections does not grow, though under MaxConnections: a newcomer
// takes an idle connection's place, else is refused.
func TestConnectionsPastHardLimit(t *testing.T) {
	held := int64(0)
	c, clk := newLimitedController(Limits{MaxConnections: 100, MaxRPCMemory: 100 << 20})
	c.readMemory = func() (int64, uint64) { return held, 0 }
	c.baseline = 0
	first := connFrom("127.0.1.1", 1)
	if c.admitConn(first) == nil {
		t.Fatal("refused under every limit")
	}
	// Later, so that first is the one idle longest: at equal idle times
	// the choice between them follows map order.
	clk.t = clk.t.Add(time.Millisecond)
	if c.admitConn(connFrom("127.0.1.2", 1)) == nil {
		t.Fatal("refused under every limit")
	}
	held = 126 << 20
	sampleNow(c)
	if c.admitConn(connFrom("127.0.2.1", 1)) != nil {
		t.Error("a connection was added past the hard memory limit while none was idle a second")
	}
	clk.t = clk.t.Add(2 * minIdle)
	if c.admitConn(connFrom("127.0.2.1", 2)) == nil {
		t.Fatal("a newcomer was refused past the hard memory limit while connections idled")
	}
	if !first.closed {
		t.Error("the connection idle longest was not closed to make room")
	}
	for _, m := range []struct {
		name string
		got  float64
	}{
		{"refused", testutil.ToFloat64(c.m.ConnectionsRefused.WithLabelValues(LimitMaxRPCMemory))},
		{"evicted", testutil.ToFloat64(c.m.ConnectionsEvicted.WithLabelValues(LimitMaxRPCMemory))},
	} {
		if m.got != 1 {
			t.Errorf("%s at %s: %v, want 1", m.name, LimitMaxRPCMemory, m.got)
		}
	}
	held = 100 << 20
	sampleNow(c)
	if c.admitConn(connFrom("127.0.2.1", 3)) == nil {
		t.Error("refused back under the hard limit")
	}
}
