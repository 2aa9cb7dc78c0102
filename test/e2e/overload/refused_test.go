package overload_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/test/harness/attack"
	"github.com/acme/greeter/test/harness/h2client"
	"github.com/acme/greeter/test/harness/metrics"
)

// refusedFlood is how many refused calls each case sends: before the fix,
// each kept about 575 bytes for as long as its hour-long deadline, so the
// flood would leave about 11 MiB of heap behind.
const refusedFlood = 20000

// heldHeapBound is the most the live heap may grow over a flood of refused
// calls, once collected.
const heldHeapBound = 3 << 20

// TestRefusedCallsHoldNothing plants floods of calls with a 1-hour timeout
// that the server refuses, through every refusal path — the server's RPC
// memory, a client's cap, the health limits, the connection caps — and
// checks that once they are answered the server's live heap (after a
// collection) is where it was: grpc-go's tap handle error path kept each
// refused stream's deadline timer, and what it referenced, for the hour.
func TestRefusedCallsHoldNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		// hold makes the flood refused; the connection it returns, if
		// any, is the flood's: past the hard memory limit a new
		// connection is accepted only in an idle one's place.
		hold  func(t *testing.T, addr string) *grpc.ClientConn
		flood func(ctx context.Context, conn *grpc.ClientConn, addr string, n int) (refused int64, err error)
		n     int
		// limits are the greeter_streams_refused_total labels the
		// refusals are counted under, none for connections.
		limits []string
	}{
		// A server short of memory refuses the client holding the most
		// beyond its share (RESOURCE_EXHAUSTED), everyone past a quarter
		// over (UNAVAILABLE): the same path, whichever answers.
		{"rpc memory", []string{"--max-rpc-memory=1064960"}, holdStreams(200), floodUnary, refusedFlood, []string{"max-rpc-memory", "max-rpc-memory-per-client"}},
		{"per-client cap", []string{"--max-rpc-memory-per-client=1064960"}, holdStreams(200), floodUnary, refusedFlood, []string{"max-rpc-memory-per-client"}},
		{"health watch limit", nil, holdWatches(8), floodWatch, refusedFlood, []string{"max-health-streams"}},
		// A connection refused is closed at accept: fewer, as each costs a
		// TCP handshake.
		{"connection caps", []string{"--max-connections-per-client=2"}, holdConns(2), floodConns, refusedFlood / 10, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := start(t, append([]string{"--pprof"}, tc.args...)...)
			conn := tc.hold(t, srv.Addr)
			heap := func() float64 {
				t.Helper()
				if err := metrics.Collect(context.Background(), srv.MetricsAddr); err != nil {
					t.Fatal(err)
				}
				return scrape(t, srv).Sum("go_memstats_heap_inuse_bytes", nil)
			}
			before := heap()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			begin := time.Now()
			refused, err := tc.flood(ctx, conn, srv.Addr, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(begin)
			time.Sleep(500 * time.Millisecond) // the reaper's round
			after := heap()
			m := scrape(t, srv)
			t.Logf("%d calls (1h timeout) in %s, %d refused; live heap %.1f → %.1f MiB; greeter_streams_refused_total %v, greeter_connections_refused_total %v",
				tc.n, took.Round(time.Millisecond), refused, before/(1<<20), after/(1<<20), m.Sum("greeter_streams_refused_total", nil), m.Sum("greeter_connections_refused_total", nil))
			if refused < int64(tc.n)/2 {
				t.Errorf("only %d of %d calls refused: the flood does not test the refusal path", refused, tc.n)
			}
			if len(tc.limits) > 0 {
				counted := 0.0
				for _, l := range tc.limits {
					counted += m.Sum("greeter_streams_refused_total", map[string]string{"limit": l})
				}
				if counted < float64(refused) {
					t.Errorf("greeter_streams_refused_total{limit=%v} = %v, want at least the %d refused", tc.limits, counted, refused)
				}
			}
			if grown := after - before; grown > heldHeapBound {
				t.Errorf("the live heap grew %.1f MiB over %d refused calls (%.0f bytes each), want under %d MiB", grown/(1<<20), refused, grown/float64(refused), heldHeapBound>>20)
			}
		})
	}
}

// holdStreams holds up to n slow SayHelloStream calls from attack.AttackerIP for
// the test, until the server refuses one: the client's share, or the
// server's budget, is then taken.
func holdStreams(n int) func(t *testing.T, addr string) *grpc.ClientConn {
	return func(t *testing.T, addr string) *grpc.ClientConn {
		conn := dialFrom(t, attack.AttackerIP, addr)
		client := greeterv1.NewGreeterServiceClient(conn)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		for i := range n {
			s, err := client.SayHelloStream(ctx, &greeterv1.SayHelloStreamRequest{Name: "Ada", Count: 5, Interval: durationpb.New(10 * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			// Refused, or, once the server is over a budget this small,
			// shed (RESOURCE_EXHAUSTED, or CANCELLED before its request
			// was read): the budget is taken either way.
			switch _, err := s.Recv(); status.Code(err) {
			case codes.OK:
			case codes.ResourceExhausted, codes.Unavailable, codes.Canceled:
				t.Logf("holding %d streams; the next ended: %v", i, err)
				return conn
			default:
				t.Fatal(err)
			}
		}
		t.Fatalf("%d streams held, none refused", n)
		return nil
	}
}

// holdWatches holds n health Watch streams from attack.AttackerIP, its limit.
func holdWatches(n int) func(t *testing.T, addr string) *grpc.ClientConn {
	return func(t *testing.T, addr string) *grpc.ClientConn {
		conn := dialFrom(t, attack.AttackerIP, addr)
		client := healthpb.NewHealthClient(conn)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		for range n {
			w, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Recv(); err != nil {
				t.Fatal(err)
			}
		}
		// A client's watchers do not starve its checks.
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health check from a client holding %d watchers: %v, %v", n, resp, err)
		}
		return conn
	}
}

// holdConns opens n connections from attack.AttackerIP, its limit.
func holdConns(n int) func(t *testing.T, addr string) *grpc.ClientConn {
	return func(t *testing.T, addr string) *grpc.ClientConn {
		for range n {
			c, err := h2client.Dial(context.Background(), addr, h2client.WithLocalIP(attack.AttackerIP))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
		}
		return nil
	}
}

// flood runs n calls, 32 at a time, counting those refused with
// a status a client can act on.
func flood(ctx context.Context, n int, call func(ctx context.Context) error) (int64, error) {
	var refused atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				cctx, cancel := context.WithTimeout(ctx, time.Hour)
				err := call(cctx)
				cancel()
				switch status.Code(err) {
				case codes.OK:
				case codes.ResourceExhausted, codes.Unavailable:
					refused.Add(1)
				default:
					once.Do(func() { firstErr = fmt.Errorf("a flooded call ended %v", err) })
				}
			}
		}()
	}
	wg.Wait()
	return refused.Load(), firstErr
}

func floodUnary(ctx context.Context, conn *grpc.ClientConn, _ string, n int) (int64, error) {
	client := greeterv1.NewGreeterServiceClient(conn)
	return flood(ctx, n, func(ctx context.Context) error {
		_, err := client.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "Ada"})
		return err
	})
}

func floodWatch(ctx context.Context, conn *grpc.ClientConn, _ string, n int) (int64, error) {
	client := healthpb.NewHealthClient(conn)
	return flood(ctx, n, func(ctx context.Context) error {
		w, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		_, err = w.Recv()
		return err
	})
}

// floodConns opens connections past the per-client cap: each is closed as
// soon as it is accepted, which a client sees as a failed dial.
func floodConns(ctx context.Context, _ *grpc.ClientConn, addr string, n int) (int64, error) {
	var refused int64
	for range n {
		c, err := h2client.Dial(ctx, addr, h2client.WithLocalIP(attack.AttackerIP))
		if err != nil {
			refused++
			continue
		}
		c.Close()
	}
	return refused, nil
}
