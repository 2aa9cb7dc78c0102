package overload_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/acme/greeter/test/harness/attack"
	"github.com/acme/greeter/test/harness/procstat"
)

// TestStuckReaders is the burst of stuck readers: 5,000 SayHelloStream calls
// of 10,000 one-letter greetings (the most messages per byte), opened within
// a second from one address or from 50, on connections that grant the
// server a flow-control window of 0 and never read. Every greeting the
// server sends queues on its side; grpc-go bounds a stream's queue by its
// message bytes (64 KiB), not by the buffers each message holds, which
// made it most of a MiB a stream, faster than any sample of the memory.
// Now, from outside:
//
//   - peak RSS stays under rssBound;
//   - a well-behaved client at another address has ≥ 99% of its SayHello
//     calls succeed, with a p99 under wellBehavedP99;
//   - the stuck streams end only with a status a client can act on, or a
//     reset, or not at all while they are held.
func TestStuckReaders(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shape attack.Shape
	}{
		{"1 address × 50 connections × 100", attack.Shape{Addrs: 1, ConnsPerAddr: 50, StreamsPerConn: 100}},
		{"50 addresses × 1 × 100", attack.Shape{Addrs: 50, ConnsPerAddr: 1, StreamsPerConn: 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stuckReaders(t, tc.shape)
		})
	}
}

// stuckHold is how long the stuck readers hold their streams while the
// well-behaved client calls.
const stuckHold = 6 * time.Second

// stuckCount is how many greetings each stuck reader asks for: more than
// any queue holds.
const stuckCount = 10000

func stuckReaders(t *testing.T, shape attack.Shape) {
	srv := start(t)
	base, err := procstat.Read(srv.Pid())
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	peakRSS := watchRSS(t, srv)
	polite := politeCalls(t, attack.WellBehavedIP, srv.Addr, stop)
	crowd, err := attack.StuckReaders(context.Background(), srv.Addr, shape, stuckCount)
	if err != nil {
		t.Fatalf("opening the stuck readers: %v", err)
	}
	t.Cleanup(crowd.Close)
	time.Sleep(stuckHold)
	m := scrape(t, srv)
	ends := crowd.Ends()
	close(stop)
	peak := peakRSS()
	p := polite()
	t.Logf("%d addresses × %d connections × %d stuck readers opened in %s, held %s: %d still held, ended %v; refused %v, reaped %v, pressure %.2f; server RSS %.1f → peak %.1f MiB; well-behaved client: %s",
		shape.Addrs, shape.ConnsPerAddr, shape.StreamsPerConn, crowd.Took.Round(time.Millisecond), stuckHold, crowd.Held(), ends,
		m.Sum("greeter_streams_refused_total", nil), m.Sum("greeter_streams_reaped_total", nil), m.Sum("greeter_memory_pressure", nil),
		float64(base.RSS)/(1<<20), float64(peak)/(1<<20), p)
	for _, err := range p.Errs {
		t.Logf("well-behaved call failed: %v", err)
	}
	if crowd.Took > 2*time.Second {
		t.Errorf("opening %d streams took %s: not a burst", crowd.Opened, crowd.Took)
	}
	checkPeakRSS(t, peak)
	checkWellBehaved(t, p)
	for code := range ends {
		switch code {
		case codes.Unavailable.String(), codes.ResourceExhausted.String(), codes.Canceled.String():
		default:
			if !strings.HasPrefix(code, attack.ResetPrefix) {
				t.Errorf("a stuck reader's stream was ended with %s: want UNAVAILABLE, RESOURCE_EXHAUSTED, CANCELLED or a reset", code)
			}
		}
	}
}
