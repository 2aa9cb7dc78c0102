package overload_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/test/harness/h2client"
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

	streamMethod = "/acme.greeter.v1.GreeterService/SayHelloStream"
	helloMethod  = "/acme.greeter.v1.GreeterService/SayHello"
)

// The hostile client and the well-behaved one are different clients to the
// server's per-client limits: they dial from different loopback addresses.
const (
	attackerIP = "127.0.0.2"
	healthIP   = "127.0.0.3"
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

func dialFrom(t *testing.T, ip, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := dialFromNoT(ip, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// dialFromNoT is dialFrom for goroutines other than the test's: the caller
// closes the connection.
func dialFromNoT(ip, addr string) (*grpc.ClientConn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }))
}

// peakRSS samples the server's RSS every 50ms until stop is closed.
type peakRSS struct {
	mu   sync.Mutex
	peak int64
	done chan struct{}
}

func watchRSS(t *testing.T, pid int, stop <-chan struct{}) *peakRSS {
	p := &peakRSS{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if s, err := procstat.Read(pid); err == nil {
				p.mu.Lock()
				p.peak = max(p.peak, s.RSS)
				p.mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

func (p *peakRSS) Peak() int64 {
	<-p.done
	return p.peak
}

// politeCalls makes a SayHello every 20ms from 127.0.0.1 until stop, and
// reports how they went.
func politeCalls(t *testing.T, addr string, stop <-chan struct{}) func() polite {
	return politeFrom(t, "127.0.0.1", addr, stop)
}

// polite is what a well-behaved client's calls met.
type polite struct {
	took []time.Duration // sorted
	errs []error
}

func (p polite) sorted() polite {
	slices.Sort(p.took)
	return p
}

func (p polite) n() int { return len(p.took) }

func (p polite) slowest() time.Duration {
	if len(p.took) == 0 {
		return 0
	}
	return p.took[len(p.took)-1]
}

func (p polite) p99() time.Duration {
	if len(p.took) == 0 {
		return 0
	}
	return p.took[len(p.took)*99/100]
}

func (p polite) String() string {
	return fmt.Sprintf("%d calls, %d failed, p99 %s, slowest %s", p.n(), len(p.errs), p.p99().Round(time.Millisecond), p.slowest().Round(time.Millisecond))
}

// tally counts how the server ended the streams of conns: by gRPC status
// name, or "RST_STREAM <code>".
func tally(conns []*h2client.Conn) map[string]int {
	out := map[string]int{}
	for _, c := range conns {
		for _, e := range c.Ends() {
			switch {
			case e.Reset:
				out["RST_STREAM "+e.Code.String()]++
			case e.Status >= 0:
				out[codes.Code(e.Status).String()]++
			default:
				out["ended without status"]++
			}
		}
	}
	return out
}

func ended(conns []*h2client.Conn) int {
	n := 0
	for _, c := range conns {
		n += c.Ended()
	}
	return n
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
		name                  string
		addrs, conns, perConn int
	}{
		{"50 addresses × 1,000", 50, 1, 1000},
		{"50 addresses × 10 × 100", 50, 10, 100},
		{"1 address × 50 × 1,000", 1, 50, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			heldStreams(t, tc.addrs, tc.conns, tc.perConn)
		})
	}
}

// crowdHold is how long the crowd holds its streams while the well-behaved
// client calls.
const crowdHold = 6 * time.Second

func heldStreams(t *testing.T, addrs, connsPerAddr, perConn int) {
	srv := start(t)
	health := healthpb.NewHealthClient(dialFrom(t, healthIP, srv.Addr))
	base, err := procstat.Read(srv.Pid())
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	rss := watchRSS(t, srv.Pid(), stop)
	polite := politeCalls(t, srv.Addr, stop)

	ctx := context.Background()
	var (
		attack       []*h2client.Conn
		dialsRefused int
	)
	for a := range addrs {
		ip := attackerIP
		if addrs > 1 {
			ip = fmt.Sprintf("127.0.1.%d", a+1)
		}
		for range connsPerAddr {
			c, err := h2client.Dial(ctx, srv.Addr, h2client.WithLocalIP(ip))
			if err != nil {
				// Past the hard memory limit, a new connection is
				// accepted only in an idle one's place.
				dialsRefused++
				continue
			}
			t.Cleanup(func() { c.Close() })
			attack = append(attack, c)
			for range perConn {
				if _, err := c.OpenStream(streamMethod); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	opened := len(attack) * perConn
	slow := slowStreams(t, srv.Addr, 20)
	hctx, cancel := context.WithTimeout(ctx, wellBehavedBound)
	resp, err := health.Check(hctx, &healthpb.HealthCheckRequest{})
	cancel()
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health check during the attack: %v, %v; want SERVING within %s", resp, err, wellBehavedBound)
	}
	time.Sleep(crowdHold)
	m := scrape(t, srv)
	ends := tally(attack)
	refusedStatus := ends[codes.Unavailable.String()] + ends[codes.ResourceExhausted.String()]
	counted := m.Sum("greeter_streams_refused_total", nil)
	if float64(refusedStatus) > counted {
		t.Errorf("the crowd saw %d streams refused with a status, greeter_streams_refused_total is %v", refusedStatus, counted)
	}
	if connsRefused := m.Sum("greeter_connections_refused_total", nil); float64(dialsRefused) > connsRefused {
		t.Errorf("%d of the crowd's connections failed, greeter_connections_refused_total is %v", dialsRefused, connsRefused)
	}
	for code := range ends {
		switch code {
		case codes.Unavailable.String(), codes.ResourceExhausted.String(), codes.Canceled.String(), "RST_STREAM " + http2.ErrCodeRefusedStream.String():
		default:
			t.Errorf("a held stream was ended with %s: want UNAVAILABLE, RESOURCE_EXHAUSTED, CANCELLED (reaped) or REFUSED_STREAM", code)
		}
	}
	close(stop)
	peak := rss.Peak()
	p := polite()
	slowOK, slowErrs := slow()
	t.Logf("%d addresses × %d connections × %d streams held %s (%d connections refused): %d still held, ended %v; refused %v, reaped %v, pressure %.2f; server RSS %.1f → peak %.1f MiB; well-behaved client: %s; slow streams %d OK",
		addrs, connsPerAddr, perConn, crowdHold, dialsRefused, opened-ended(attack), ends, counted, m.Sum("greeter_streams_reaped_total", nil), m.Sum("greeter_memory_pressure", nil),
		float64(base.RSS)/(1<<20), float64(peak)/(1<<20), p, slowOK)
	if peak > rssBound {
		t.Errorf("peak RSS %.1f MiB, want under %d MiB", float64(peak)/(1<<20), rssBound>>20)
	}
	if p.n() == 0 || len(p.errs)*100 > p.n() {
		t.Errorf("well-behaved client: %s; want ≥ 99%% OK; first failure: %v", p, p.errs)
	}
	if p.p99() > wellBehavedP99 {
		t.Errorf("well-behaved client: %s; want p99 under %s", p, wellBehavedP99)
	}
	for _, err := range slowErrs {
		t.Errorf("well-behaved slow stream: %v", err)
	}
}

// slowStreams starts n SayHelloStream calls of 3 greetings 1s apart from
// 127.0.0.1, and returns a function waiting for them: how many ended OK,
// and the errors of the others.
func slowStreams(t *testing.T, addr string, n int) func() (int, []error) {
	client := greeterv1.NewGreeterServiceClient(dialFrom(t, "127.0.0.1", addr))
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
