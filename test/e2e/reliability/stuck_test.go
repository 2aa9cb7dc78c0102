package reliability_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/test/harness/metrics"
	"github.com/acme/greeter/test/harness/netproxy"
	"github.com/acme/greeter/test/harness/procstat"
)

// gauges reads go_goroutines and go_memstats_heap_inuse_bytes.
func gauges(t *testing.T, metricsAddr string) (goroutines, heapInuse float64) {
	t.Helper()
	m, err := metrics.Scrape(context.Background(), metricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	return m.Sum("go_goroutines", nil), m.Sum("go_memstats_heap_inuse_bytes", nil)
}

func rss(t *testing.T, pid int) int64 {
	t.Helper()
	s, err := procstat.Read(pid)
	if err != nil {
		t.Fatal(err)
	}
	return s.RSS
}

// waitFor polls cond every 100ms for at most limit and returns how long it
// took, or fails the test.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

// TestStuckClient opens 100 SayHelloStream calls of 10,000 greetings (100
// characters each, 1.1 MB per stream, 110 MB in all) and never reads them.
// HTTP/2 flow control must hold the server's memory: RSS grows by less than
// 50 MiB (and heap by less than 384 KiB per stream), and the handlers block
// in Send (messages sent stop growing) while other clients are still
// served. The cost is per stream, not per greeting asked for: a client
// holding --max-concurrent-streams (1000) such streams on one connection
// would pin about 240 MiB (see docs/reliability.md). The stuck client is alive (its transport
// answers pings), so keepalive must not drop it. Then the client's network
// goes silent (a proxy turns into a black hole: no FIN, no RST), and the
// server must notice through keepalive (--keepalive-time 1s,
// --keepalive-timeout 1s) and end the streams: go_goroutines back to the
// baseline. A second run kills the client instead (TCP RST, as the kernel
// sends for a killed process with unread data): noticed at once.
func TestStuckClient(t *testing.T) {
	for _, death := range []struct {
		name string
		die  func(*netproxy.Proxy)
	}{
		{"black hole", (*netproxy.Proxy).Blackhole},
		{"killed (RST)", (*netproxy.Proxy).Reset},
	} {
		t.Run(death.name, func(t *testing.T) { stuckClient(t, death.die) })
	}
}

func stuckClient(t *testing.T, die func(*netproxy.Proxy)) {
	const (
		streams   = 100
		count     = 10000
		maxGrowth = 50 << 20
		// What one stuck stream may cost: 64 KiB of transport window
		// plus grpc-go's 64 KiB per-stream write quota, in small messages
		// each queued in a pooled 256-byte buffer with its frame (measured:
		// about 240 KiB of heap per stream).
		maxPerStream = 384 << 10
	)
	// 100 stuck response streams from one client are more than the
	// overload limits admit for a 256 MiB server (each is charged its worst
	// case, 1.4 MiB; see test/e2e/overload): this test is about what flow
	// control and keepalive do, so it plans for 1 GiB.
	srv := startQuiet(t, "--keepalive-time", "1s", "--keepalive-timeout", "1s", "--memory-limit", "1073741824", "--pprof")
	healthy := greeterv1.NewGreeterServiceClient(dialPlain(t, srv.Addr))
	if _, err := healthy.SayHello(context.Background(), &greeterv1.SayHelloRequest{Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	if err := metrics.Collect(context.Background(), srv.MetricsAddr); err != nil {
		t.Fatal(err)
	}
	baseGoroutines, baseHeap := gauges(t, srv.MetricsAddr)
	baseRSS := rss(t, srv.Pid())

	proxy, err := netproxy.New(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	// Fixed 64 KiB windows, as a client that reads nothing would advertise:
	// grpc-go's BDP estimation would otherwise grow them (up to 16 MiB per
	// stream) and the client would soak every greeting up into its own
	// memory, leaving nothing for the server to hold back.
	conn, err := grpc.NewClient(proxy.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stuck := greeterv1.NewGreeterServiceClient(conn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	name := strings.Repeat("a", 100)
	for i := range streams {
		if _, err := stuck.SayHelloStream(ctx, &greeterv1.SayHelloStreamRequest{Name: name, Count: count}); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	// Every handler is running (started minus handled: with
	// --stream-workers, the first RPCs run on pooled goroutines, so
	// go_goroutines does not count them one for one)...
	inFlight := func() float64 {
		m, err := metrics.Scrape(context.Background(), srv.MetricsAddr)
		if err != nil {
			t.Fatal(err)
		}
		return m.Sum("grpc_server_started_total", map[string]string{"grpc_method": "SayHelloStream"}) - m.Sum("grpc_server_handled_total", map[string]string{"grpc_method": "SayHelloStream"})
	}
	waitFor(t, 20*time.Second, "stream handlers running", func() bool { return inFlight() == streams })
	// ...and blocked: messages sent stop growing.
	sent := func() float64 {
		m, err := metrics.Scrape(context.Background(), srv.MetricsAddr)
		if err != nil {
			t.Fatal(err)
		}
		return m.Sum("grpc_server_msg_sent_total", map[string]string{"grpc_method": "SayHelloStream"})
	}
	var before float64
	waitFor(t, 20*time.Second, "sends blocked by flow control", func() bool {
		a := sent()
		time.Sleep(500 * time.Millisecond)
		before = sent()
		return a == before
	})
	if before >= streams*count {
		t.Fatalf("the server sent all %v messages: nothing was held back", before)
	}
	// Hold it past a few keepalive rounds, measuring.
	var peakRSS int64
	var goroutines, heap float64
	for range 30 {
		peakRSS = max(peakRSS, rss(t, srv.Pid()))
		time.Sleep(100 * time.Millisecond)
	}
	if err := metrics.Collect(context.Background(), srv.MetricsAddr); err != nil {
		t.Fatal(err)
	}
	goroutines, heap = gauges(t, srv.MetricsAddr)
	if n := inFlight(); n != streams {
		t.Fatalf("%v streams in flight after 3s, want %d: keepalive dropped a live, slow client", n, streams)
	}
	start := time.Now()
	if _, err := healthy.SayHello(context.Background(), &greeterv1.SayHelloRequest{Name: "Ada"}); err != nil {
		t.Fatalf("another client not served while streams are stuck: %v", err)
	}
	t.Logf("stuck: %d streams, %v of %d greetings sent (%.1f per stream), server RSS %d → %d MiB (+%d MiB), heap in use %.0f → %.0f MiB (%.0f KiB per stream), goroutines %v → %v; another client's SayHello took %s",
		streams, before, streams*count, before/streams, baseRSS>>20, peakRSS>>20, (peakRSS-baseRSS)>>20,
		baseHeap/(1<<20), heap/(1<<20), (heap-baseHeap)/streams/1024, baseGoroutines, goroutines, time.Since(start).Round(time.Millisecond))
	if peakRSS-baseRSS > maxGrowth {
		t.Errorf("server RSS grew by %d MiB, want < %d MiB", (peakRSS-baseRSS)>>20, maxGrowth>>20)
	}
	if per := (heap - baseHeap) / streams; per > maxPerStream {
		t.Errorf("heap in use grew by %.0f KiB per stuck stream, want < %d KiB", per/1024, maxPerStream>>10)
	}

	// The client dies.
	die(proxy)
	took := waitFor(t, 20*time.Second, "streams reclaimed after the client went silent", func() bool {
		return inFlight() == 0
	})
	waitFor(t, 5*time.Second, "goroutines back to the baseline", func() bool {
		g, _ := gauges(t, srv.MetricsAddr)
		return g <= baseGoroutines+5
	})
	g, _ := gauges(t, srv.MetricsAddr)
	m, err := metrics.Scrape(context.Background(), srv.MetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	var ended []string
	for _, code := range []string{"OK", "Canceled", "Unavailable", "DeadlineExceeded", "Internal"} {
		if n := m.Sum("grpc_server_handled_total", map[string]string{"grpc_method": "SayHelloStream", "grpc_code": code}); n > 0 {
			ended = append(ended, fmt.Sprintf("%s: %v", code, n))
		}
	}
	t.Logf("client dead → streams reclaimed in %s (keepalive 1s + 1s); goroutines %v (baseline %v); SayHelloStream endings %v",
		took.Round(time.Millisecond), g, baseGoroutines, ended)
	if handled := m.Sum("grpc_server_handled_total", map[string]string{"grpc_method": "SayHelloStream"}); handled != streams {
		t.Errorf("%v SayHelloStream calls ended, want %d", handled, streams)
	}
	if took > 10*time.Second {
		t.Errorf("the dead peer was noticed after %s, want within a few keepalive rounds", took)
	}
	// The server still serves.
	if _, err := healthy.SayHello(context.Background(), &greeterv1.SayHelloRequest{Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
}
