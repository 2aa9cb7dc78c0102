package overload_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/test/harness/attack"
	"github.com/acme/greeter/test/harness/metrics"
	"github.com/acme/greeter/test/harness/process"
	"github.com/acme/greeter/test/harness/procstat"
)

// Bounds the tests hold the server to, with the production defaults: a
// memory limit of 256 MiB planned for (no cgroup limit on a test machine).
const (
	// rssBound is the most RSS the server may reach under any attack: the
	// issue's goal, with room under the 256 MiB pod.
	rssBound = 200 << 20
	// wellBehavedBound is the longest a well-behaved client's SayHello may
	// take while another client attacks (loopback, 2 shared cores).
	wellBehavedBound = 2 * time.Second
	// wellBehavedP99 is the 99th percentile a well-behaved client's
	// SayHello calls must stay under while a crowd holds streams.
	wellBehavedP99 = 250 * time.Millisecond
	// stalledCost is what the server estimates a response stream to a
	// client that reads nothing holds (admission.RPCCost +
	// admission.StalledCost); the test of a stream that reads nothing
	// measures it.
	stalledCost = 16<<10 + 1<<20

	streamMethod = greeterv1.GreeterService_SayHelloStream_FullMethodName
	helloMethod  = greeterv1.GreeterService_SayHello_FullMethodName
)

// start runs the greeter with its production defaults (plus args), quiet:
// no access log for tens of thousands of refused streams.
func start(t *testing.T, args ...string) *process.Server {
	t.Helper()
	return process.StartQuietForTest(t, greeterBin, args...)
}

func scrape(t *testing.T, srv *process.Server) metrics.Snapshot {
	t.Helper()
	m, err := metrics.Scrape(context.Background(), srv.MetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// dialFrom is attack.DialFrom for the test: closed when it ends.
func dialFrom(t *testing.T, ip, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := attack.DialFrom(ip, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// watchRSS restarts the server's peak RSS (VmHWM, which no sampling can
// miss) from now; the function it returns reads the peak since.
func watchRSS(t *testing.T, srv *process.Server) func() int64 {
	t.Helper()
	if err := procstat.ResetPeak(srv.Pid()); err != nil {
		t.Fatal(err)
	}
	return func() int64 {
		t.Helper()
		s, err := procstat.Read(srv.Pid())
		if err != nil {
			t.Fatal(err)
		}
		return s.PeakRSS
	}
}

// checkPeakRSS fails t if the server's peak RSS passed rssBound.
func checkPeakRSS(t *testing.T, peak int64) {
	t.Helper()
	if peak > rssBound {
		t.Errorf("peak RSS %.1f MiB, want under %d MiB", float64(peak)/(1<<20), rssBound>>20)
	}
}

// checkWellBehaved fails t unless at least 99% of the well-behaved client's
// calls p succeeded, with a p99 under wellBehavedP99.
func checkWellBehaved(t *testing.T, p attack.Calls) {
	t.Helper()
	if p.N() == 0 || len(p.Errs)*100 > p.N() {
		t.Errorf("well-behaved client: %s; want ≥ 99%% OK; failures: %v", p, p.Errs)
	}
	if p.P99() > wellBehavedP99 {
		t.Errorf("well-behaved client: %s; want p99 under %s", p, wellBehavedP99)
	}
}

// politeCalls is a well-behaved client (attack.Polite) at ip until stop is
// closed.
func politeCalls(t *testing.T, ip, addr string, stop <-chan struct{}) func() attack.Calls {
	t.Helper()
	calls, err := attack.Polite(ip, addr, stop)
	if err != nil {
		t.Fatal(err)
	}
	return calls
}

// TestHeldStreams is the crowd of holders: connections from one or many
// addresses, each opening 1,000 SayHelloStream calls that send HEADERS and
// nothing else, held, against the production defaults. Before the
// overload limits, 50 × 1,000 took the server to 606 MiB (OOM-killed in its
// 256 MiB pod); with the worst-case charges of issue 15, they took the
// whole RPC budget, and every well-behaved call from another address failed
// UNAVAILABLE until the first-message timeout reaped them. Now:
//
//   - peak RSS stays under rssBound (the realistic crowd of 50,000 streams
//     spread over 500 connections reached 222–235 MiB while the calls
//     waiting for their request grew with each address that arrived and
//     the collector let the refusals' garbage grow to four times what was
//     live);
//   - the streams beyond grpc-go's per-connection limit are reset
//     (REFUSED_STREAM), the others are held or refused with a status a
//     client can act on, or reaped (CANCELLED), and the refusals are
//     counted in greeter_streams_refused_total;
//   - a well-behaved client at another address has ≥ 99% of its SayHello
//     calls succeed with a p99 under wellBehavedP99, its slow streams all
//     succeed, and a health check from a third address is SERVING.
func TestHeldStreams(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shape attack.Shape
	}{
		{"50 addresses × 1,000", attack.Shape{Addrs: 50, ConnsPerAddr: 1, StreamsPerConn: 1000}},
		{"50 addresses × 10 × 100", attack.Shape{Addrs: 50, ConnsPerAddr: 10, StreamsPerConn: 100}},
		{"1 address × 50 × 1,000", attack.Shape{Addrs: 1, ConnsPerAddr: 50, StreamsPerConn: 1000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			heldStreams(t, tc.shape)
		})
	}
}

// crowdHold is how long the crowd holds its streams while the well-behaved
// client calls.
const crowdHold = 6 * time.Second

func heldStreams(t *testing.T, shape attack.Shape) {
	srv := start(t)
	health := healthpb.NewHealthClient(dialFrom(t, attack.ProbeIP, srv.Addr))
	base, err := procstat.Read(srv.Pid())
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	peakRSS := watchRSS(t, srv)
	polite := politeCalls(t, attack.WellBehavedIP, srv.Addr, stop)

	ctx := context.Background()
	crowd, err := attack.HeldStreams(ctx, srv.Addr, shape)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(crowd.Close)
	slow := slowStreams(t, srv.Addr, 20)
	hctx, cancel := context.WithTimeout(ctx, wellBehavedBound)
	resp, err := health.Check(hctx, &healthpb.HealthCheckRequest{})
	cancel()
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health check during the attack: %v, %v; want SERVING within %s", resp, err, wellBehavedBound)
	}
	time.Sleep(crowdHold)
	m := scrape(t, srv)
	ends := crowd.Ends()
	refusedStatus := ends[codes.Unavailable.String()] + ends[codes.ResourceExhausted.String()]
	counted := m.Sum("greeter_streams_refused_total", nil)
	if float64(refusedStatus) > counted {
		t.Errorf("the crowd saw %d streams refused with a status, greeter_streams_refused_total is %v", refusedStatus, counted)
	}
	if connsRefused := m.Sum("greeter_connections_refused_total", nil); float64(crowd.DialsFailed) > connsRefused {
		t.Errorf("%d of the crowd's connections failed, greeter_connections_refused_total is %v", crowd.DialsFailed, connsRefused)
	}
	for code := range ends {
		switch code {
		case codes.Unavailable.String(), codes.ResourceExhausted.String(), codes.Canceled.String(), attack.ResetName(http2.ErrCodeRefusedStream):
		default:
			t.Errorf("a held stream was ended with %s: want UNAVAILABLE, RESOURCE_EXHAUSTED, CANCELLED (reaped) or REFUSED_STREAM", code)
		}
	}
	close(stop)
	peak := peakRSS()
	p := polite()
	slowOK, slowErrs := slow()
	t.Logf("%d addresses × %d connections × %d streams held %s (%d connections refused): %d still held, ended %v; refused %v, reaped %v, pressure %.2f; server RSS %.1f → peak %.1f MiB; well-behaved client: %s; slow streams %d OK",
		shape.Addrs, shape.ConnsPerAddr, shape.StreamsPerConn, crowdHold, crowd.DialsFailed, crowd.Held(), ends, counted, m.Sum("greeter_streams_reaped_total", nil), m.Sum("greeter_memory_pressure", nil),
		float64(base.RSS)/(1<<20), float64(peak)/(1<<20), p, slowOK)
	checkPeakRSS(t, peak)
	checkWellBehaved(t, p)
	for _, err := range slowErrs {
		t.Errorf("well-behaved slow stream: %v", err)
	}
}

// slowStreams starts n SayHelloStream calls of 3 greetings 1s apart from
// 127.0.0.1, and returns a function waiting for them: how many ended OK,
// and the errors of the others.
func slowStreams(t *testing.T, addr string, n int) func() (int, []error) {
	client := greeterv1.NewGreeterServiceClient(dialFrom(t, attack.WellBehavedIP, addr))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ok   int
		errs []error
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := func() error {
				s, err := client.SayHelloStream(ctx, &greeterv1.SayHelloStreamRequest{Name: "Ada", Count: 3, Interval: durationpb.New(time.Second)})
				if err != nil {
					return err
				}
				for got := 0; ; got++ {
					if _, err := s.Recv(); err == io.EOF {
						if got != 3 {
							return fmt.Errorf("%d greetings, want 3", got)
						}
						return nil
					} else if err != nil {
						return err
					}
				}
			}()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			ok++
		}()
	}
	return func() (int, []error) {
		wg.Wait()
		return ok, errs
	}
}
