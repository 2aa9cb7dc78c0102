package overload_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/test/harness/h2client"
	"github.com/acme/greeter/test/harness/metrics"
	"github.com/acme/greeter/test/harness/process"
	"github.com/acme/greeter/test/harness/procstat"
)

// Bounds the tests hold the server to, with the production defaults: a
// memory limit of 256 MiB planned for (no cgroup limit on a test machine),
// of which --max-rpc-memory may commit half.
const (
	rpcBudget = 128 << 20
	// wellBehavedBound is the longest a well-behaved client's SayHello may
	// take while another client attacks (loopback, 2 shared cores).
	wellBehavedBound = 2 * time.Second
	// responseQueue is what the server charges a response stream for a
	// client that reads nothing (admission.ResponseQueue); the test of a
	// stream that reads nothing measures it.
	responseQueue = 5 << 18

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
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
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
// reports how many, the slowest, and every failure.
func politeCalls(t *testing.T, addr string, stop <-chan struct{}) func() (n int, slowest time.Duration, errs []error) {
	client := greeterv1.NewGreeterServiceClient(dialFrom(t, "127.0.0.1", addr))
	var (
		mu      sync.Mutex
		n       int
		slowest time.Duration
		errs    []error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			begin := time.Now()
			_, err := client.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "Ada"})
			took := time.Since(begin)
			cancel()
			mu.Lock()
			n++
			slowest = max(slowest, took)
			if err != nil {
				errs = append(errs, err)
			}
			mu.Unlock()
		}
	}()
	return func() (int, time.Duration, []error) {
		<-done
		return n, slowest, errs
	}
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

// TestHeldStreams is the attack: K connections × 1,000
// SayHelloStream calls that send HEADERS and nothing else, held open,
// against the production defaults. Before the overload limits, 50 × 1,000
// took the server to 606 MiB (OOM-killed in its 256 MiB pod). Now:
//
//   - peak RSS stays under the RPC budget (128 MiB);
//   - every stream beyond what the limits admit is refused at once (gRPC
//     status in trailers-only, or REFUSED_STREAM past the per-connection
//     limit), and greeter_streams_refused_total counts the status ones;
//   - a well-behaved client's SayHello calls all succeed, each within
//     wellBehavedBound, and a health check from a third address is SERVING;
//   - for 50 × 1,000, the admitted streams are reaped by the default
//     --first-message-timeout (10s), counted in greeter_streams_reaped_total,
//     and answered CANCELLED (grpc-go's answer to the cancelled read).
func TestHeldStreams(t *testing.T) {
	for _, tc := range []struct {
		conns, perConn int
		waitReap       bool
	}{
		{1, 1000, false},
		{10, 1000, false},
		{50, 1000, true},
	} {
		t.Run(fmt.Sprintf("%dx%d", tc.conns, tc.perConn), func(t *testing.T) {
			heldStreams(t, tc.conns, tc.perConn, tc.waitReap)
		})
	}
}

func heldStreams(t *testing.T, conns, perConn int, waitReap bool) {
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
	var attack []*h2client.Conn
	for range conns {
		c, err := h2client.Dial(ctx, srv.Addr, h2client.WithLocalIP(attackerIP))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		attack = append(attack, c)
		for range perConn {
			if _, err := c.OpenStream(streamMethod); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Everything the limits refuse is refused at once: the count of ended
	// streams settles, and what the server charges is the admitted ones.
	admitted := func() int { return conns*perConn - ended(attack) }
	deadline := time.Now().Add(10 * time.Second)
	for last := -1; last != admitted(); {
		last = admitted()
		if time.Now().After(deadline) {
			t.Fatalf("refusals did not settle: %d streams not ended, ends %v", admitted(), tally(attack))
		}
		time.Sleep(300 * time.Millisecond)
	}
	m := scrape(t, srv)
	if charged := m.Sum("greeter_rpc_memory_bytes", nil); charged < float64(admitted()*streamCost(m)) || charged > float64(rpcBudget) {
		t.Errorf("%v bytes charged to RPCs in flight for %d held streams of %d bytes, budget %d", charged, admitted(), streamCost(m), rpcBudget)
	}
	hctx, cancel := context.WithTimeout(ctx, wellBehavedBound)
	resp, err := health.Check(hctx, &healthpb.HealthCheckRequest{})
	cancel()
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health check during the attack: %v, %v; want SERVING within %s", resp, err, wellBehavedBound)
	}
	time.Sleep(time.Second) // polite calls during the held attack
	m = scrape(t, srv)
	refusedStatus := 0
	for code, n := range tally(attack) {
		if !strings.HasPrefix(code, "RST_STREAM") {
			refusedStatus += n
		}
	}
	counted := m.Sum("greeter_streams_refused_total", nil)
	if float64(refusedStatus) != counted {
		t.Errorf("the client saw %d streams refused with a status, greeter_streams_refused_total is %v", refusedStatus, counted)
	}
	for code := range tally(attack) {
		if code != codes.Unavailable.String() && code != codes.ResourceExhausted.String() && code != "RST_STREAM "+http2.ErrCodeRefusedStream.String() {
			t.Errorf("a held stream was refused with %s: want UNAVAILABLE, RESOURCE_EXHAUSTED or REFUSED_STREAM", code)
		}
	}
	held := admitted()
	t.Logf("%d × %d held streams: %d admitted, refused %v; greeter_streams_refused_total %v",
		conns, perConn, held, tally(attack), m.Sum("greeter_streams_refused_total", nil))

	if waitReap {
		limit := m.Sum("greeter_limit", map[string]string{"limit": "first-message-timeout"})
		took := time.Now()
		for admitted() > 0 {
			if time.Since(took) > time.Duration(limit*float64(time.Second))+5*time.Second {
				t.Fatalf("%d held streams not reaped %s after the attack (--first-message-timeout %vs)", admitted(), time.Since(took), limit)
			}
			time.Sleep(100 * time.Millisecond)
		}
		m = scrape(t, srv)
		if got := m.Sum("greeter_streams_reaped_total", map[string]string{"limit": "first-message-timeout"}); got != float64(held) {
			t.Errorf("greeter_streams_reaped_total{limit=first-message-timeout} = %v, want the %d held streams", got, held)
		}
		if got := tally(attack)[codes.Canceled.String()]; got != held {
			t.Errorf("%d streams ended CANCELLED, want the %d reaped", got, held)
		}
		t.Logf("the %d held streams were reaped %s after the attack (--first-message-timeout %vs): %v", held, time.Since(took).Round(100*time.Millisecond), limit, tally(attack))
	}

	close(stop)
	peak := rss.Peak()
	n, slowest, errs := polite()
	t.Logf("server RSS %.1f MiB → peak %.1f MiB; the well-behaved client made %d calls, slowest %s, %d failed",
		float64(base.RSS)/(1<<20), float64(peak)/(1<<20), n, slowest.Round(time.Millisecond), len(errs))
	if peak > rpcBudget {
		t.Errorf("peak RSS %.1f MiB, want under the RPC budget %d MiB", float64(peak)/(1<<20), rpcBudget>>20)
	}
	for _, err := range errs {
		t.Errorf("well-behaved client: %v", err)
	}
	if n == 0 || slowest > wellBehavedBound {
		t.Errorf("well-behaved client: %d calls, slowest %s, want each within %s", n, slowest, wellBehavedBound)
	}
}

// streamCost is what the server charges one SayHelloStream, from the limits
// it exports: --max-recv-msg-size + 96 KiB + the response queue.
func streamCost(m metrics.Snapshot) int {
	return int(m.Sum("greeter_limit", map[string]string{"limit": "max-recv-msg-size"})) + 96<<10 + responseQueue
}

// TestConnectionLimits opens connections from one address past
// --max-connections-per-client, then from five addresses past
// --max-connections: the excess ones are closed at once (never left
// waiting), counted, and a well-behaved client's established connection
// keeps being served; a new one, while the server is full, fails fast.
func TestConnectionLimits(t *testing.T) {
	srv := start(t)
	polite := greeterv1.NewGreeterServiceClient(dialFrom(t, "127.0.0.1", srv.Addr))
	if _, err := polite.SayHello(context.Background(), &greeterv1.SayHelloRequest{Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	m := scrape(t, srv)
	maxConns := int(m.Sum("greeter_limit", map[string]string{"limit": "max-connections"}))
	perClient := int(m.Sum("greeter_limit", map[string]string{"limit": "max-connections-per-client"}))
	if maxConns == 0 || perClient == 0 {
		t.Fatalf("limits max-connections %d, per client %d", maxConns, perClient)
	}
	open := func(ip string, n int) (ok, refused int) {
		for range n {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err := h2client.Dial(ctx, srv.Addr, h2client.WithLocalIP(ip))
			cancel()
			if err != nil {
				refused++
				continue
			}
			t.Cleanup(func() { c.Close() })
			ok++
		}
		return ok, refused
	}
	ok, refused := open(attackerIP, perClient+20)
	if ok != perClient || refused != 20 {
		t.Errorf("from one address: %d connections served, %d refused; want %d and 20", ok, refused, perClient)
	}
	total := ok + 1 // the polite client's
	for i := 10; total < maxConns; i++ {
		ok, _ := open(fmt.Sprintf("127.0.0.%d", i), min(perClient, maxConns-total))
		total += ok
	}
	if ok, refused := open("127.0.0.99", 10); ok != 0 || refused != 10 {
		t.Errorf("server full: %d connections served, %d refused; want 0 and 10", ok, refused)
	}
	m = scrape(t, srv)
	if got := m.Sum("greeter_connections", nil); int(got) != maxConns {
		t.Errorf("greeter_connections = %v, want the limit %d", got, maxConns)
	}
	if got := m.Sum("greeter_connections_refused_total", map[string]string{"limit": "max-connections-per-client"}); got != 20 {
		t.Errorf("refused for max-connections-per-client: %v, want 20", got)
	}
	if got := m.Sum("greeter_connections_refused_total", map[string]string{"limit": "max-connections"}); got < 1 {
		t.Errorf("refused for max-connections: %v, want at least 1", got)
	}
	begin := time.Now()
	if _, err := polite.SayHello(context.Background(), &greeterv1.SayHelloRequest{Name: "Ada"}); err != nil {
		t.Errorf("the established well-behaved connection, server full: %v", err)
	}
	if took := time.Since(begin); took > wellBehavedBound {
		t.Errorf("SayHello on the established connection took %s", took)
	}
	fresh := greeterv1.NewGreeterServiceClient(dialFrom(t, "127.0.0.1", srv.Addr))
	begin = time.Now()
	_, err := fresh.SayHello(context.Background(), &greeterv1.SayHelloRequest{Name: "Ada"})
	if status.Code(err) != codes.Unavailable || time.Since(begin) > 5*time.Second {
		t.Errorf("a new connection to a full server: %v after %s, want UNAVAILABLE at once", err, time.Since(begin))
	}
	t.Logf("limits: %d connections, %d per client; %d open, refused %v (per client) + %v (server full); a new connection to the full server failed in %s: %v",
		maxConns, perClient, int(m.Sum("greeter_connections", nil)),
		m.Sum("greeter_connections_refused_total", map[string]string{"limit": "max-connections-per-client"}),
		m.Sum("greeter_connections_refused_total", map[string]string{"limit": "max-connections"}),
		time.Since(begin).Round(time.Millisecond), status.Code(err))
}
