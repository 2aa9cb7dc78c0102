package overload_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/test/harness/attack"
	"github.com/acme/greeter/test/harness/h2client"
	"github.com/acme/greeter/test/harness/metrics"
)

// TestTrickledRequest sends a SayHello request one byte every 100ms: the
// whole message would take 2.5s, past --first-message-timeout 1s (short,
// to keep the test quick; the default is 10s). The server must end the call
// about when the timeout says, count it as reaped, and the handler must
// never have run.
func TestTrickledRequest(t *testing.T) {
	const timeout = time.Second
	srv := start(t, "--first-message-timeout", timeout.String())
	c, err := h2client.Dial(context.Background(), srv.Addr, h2client.WithLocalIP(attack.AttackerIP))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body, err := proto.Marshal(&greeterv1.SayHelloRequest{Name: "Ada Lovelace and friends"})
	if err != nil {
		t.Fatal(err)
	}
	msg := h2client.Message(body)
	id, err := c.OpenStream(helloMethod)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	var end h2client.End
	for i := 0; ; i++ {
		if e, ok := c.Ends()[id]; ok {
			end = e
			break
		}
		if i < len(msg) {
			if err := c.WriteData(id, i == len(msg)-1, msg[i:i+1]); err != nil {
				t.Fatal(err)
			}
		}
		if time.Since(begin) > 10*timeout {
			t.Fatalf("trickled request not ended after %s", time.Since(begin))
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(begin)
	m := scrape(t, srv)
	t.Logf("trickled SayHello ended after %s: %+v (%s); reaped %v", took.Round(10*time.Millisecond), end, codes.Code(end.Status), m.Sum("greeter_streams_reaped_total", map[string]string{"limit": "first-message-timeout"}))
	if took < timeout || took > timeout+time.Second {
		t.Errorf("ended after %s, want within a second after --first-message-timeout %s", took, timeout)
	}
	// grpc-go answers a unary call whose request read was cancelled
	// CANCELLED, before any interceptor could say why.
	if end.Status != int(codes.Canceled) {
		t.Errorf("trickled unary call ended %+v, want status CANCELLED", end)
	}
	if got := m.Sum("greeter_streams_reaped_total", map[string]string{"limit": "first-message-timeout"}); got != 1 {
		t.Errorf("greeter_streams_reaped_total{limit=first-message-timeout} = %v, want 1", got)
	}
	if got := m.Sum("grpc_server_handled_total", map[string]string{"grpc_method": "SayHello"}); got != 0 {
		t.Errorf("the handler ran %v times for a request that never arrived", got)
	}
}

// TestStreamThatReadsNothing opens 40 SayHelloStream calls of 10,000
// one-letter greetings (the smallest, so the most per byte queued) and
// reads nothing, with fixed 64 KiB windows. It measures what each costs the
// server (heap in use per stream, which the server charges as
// responseQueue), then waits for --send-stall-timeout (2s here; 30s by
// default) to close the connection: every stream ends UNAVAILABLE for the
// client, the server counts them reaped, and its heap and in-flight charge
// return to where they were.
func TestStreamThatReadsNothing(t *testing.T) {
	const (
		streams = 40
		timeout = 2 * time.Second
	)
	// --pprof, to collect garbage before each heap reading.
	srv := start(t, "--send-stall-timeout", timeout.String(), "--pprof")
	collect := func() {
		t.Helper()
		if err := metrics.Collect(context.Background(), srv.MetricsAddr); err != nil {
			t.Fatal(err)
		}
	}
	collect()
	base := scrape(t, srv)
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := greeterv1.NewGreeterServiceClient(conn)
	var calls []grpc.ServerStreamingClient[greeterv1.SayHelloStreamResponse]
	for range streams {
		s, err := client.SayHelloStream(context.Background(), &greeterv1.SayHelloStreamRequest{Name: "a", Count: 10000})
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, s)
	}
	begin := time.Now()
	// Sends block once 64 KiB are in the client's window and 64 KiB more
	// queued: the messages sent stop growing.
	var heap float64
	for prev := -1.0; ; {
		time.Sleep(200 * time.Millisecond)
		m := scrape(t, srv)
		sent := m.Sum("grpc_server_msg_sent_total", map[string]string{"grpc_method": "SayHelloStream"})
		if sent == prev && sent > 0 {
			collect()
			heap = scrape(t, srv).Sum("go_memstats_heap_inuse_bytes", nil)
			break
		}
		prev = sent
		if time.Since(begin) > timeout {
			break // reaping starts; measure what is there
		}
	}
	perStream := (heap - base.Sum("go_memstats_heap_inuse_bytes", nil)) / streams
	t.Logf("%d streams that read nothing: heap in use +%.0f KiB per stream (estimated %d KiB)", streams, perStream/1024, stalledCost>>10)
	if perStream > stalledCost {
		t.Errorf("a stream that reads nothing holds %.0f KiB of heap, more than the %d KiB the server estimates", perStream/1024, stalledCost>>10)
	}

	// Reading now would let the streams go on: wait for the reaper first.
	for deadline := time.Now().Add(timeout + 5*time.Second); scrape(t, srv).Sum("greeter_streams_reaped_total", map[string]string{"limit": "send-stall-timeout"}) == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("no stream reaped %s after the sends blocked (--send-stall-timeout %s)", time.Since(begin), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(begin)
	for i, s := range calls {
		var err error
		for err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != codes.Unavailable {
			t.Errorf("stream %d ended %v, want UNAVAILABLE (connection closed)", i, err)
		}
	}
	// What the streams held is freed: the heap, once collected, is back
	// within 2 MiB of where it was.
	var heapAfter float64
	for deadline := time.Now().Add(5 * time.Second); ; {
		collect()
		heapAfter = scrape(t, srv).Sum("go_memstats_heap_inuse_bytes", nil)
		if heapAfter-base.Sum("go_memstats_heap_inuse_bytes", nil) < 2<<20 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	m := scrape(t, srv)
	reaped := m.Sum("greeter_streams_reaped_total", map[string]string{"limit": "send-stall-timeout"})
	t.Logf("the connection was closed %s after the sends blocked (--send-stall-timeout %s); reaped %v; heap in use %.1f MiB before, %.1f MiB after", took.Round(10*time.Millisecond), timeout, reaped, base.Sum("go_memstats_heap_inuse_bytes", nil)/(1<<20), heapAfter/(1<<20))
	if reaped < 1 || reaped > streams {
		t.Errorf("greeter_streams_reaped_total{limit=send-stall-timeout} = %v, want 1 to %d", reaped, streams)
	}
	if took > timeout+3*time.Second {
		t.Errorf("closed after %s, want soon after --send-stall-timeout %s", took, timeout)
	}
	if grown := heapAfter - base.Sum("go_memstats_heap_inuse_bytes", nil); grown >= 2<<20 {
		t.Errorf("heap in use %.1f MiB over where it was after the connection closed", grown/(1<<20))
	}
}

// TestFloods sends, each on its own connection, 20,000 streams opened and
// reset at once (HTTP/2 rapid reset), 20,000 PINGs, and 20,000 SETTINGS.
// grpc-go ends the ping flood (GOAWAY too_many_pings), and its control frame
// throttle makes the others wait on their own connection; either way, a
// well-behaved client on another connection is served within
// wellBehavedBound throughout, and the server's RSS stays under the budget.
func TestFloods(t *testing.T) {
	const frames = 20000
	for _, flood := range []struct {
		name string
		send func(*h2client.Conn) error
	}{
		{"rapid reset", func(c *h2client.Conn) error {
			id, err := c.OpenStream(streamMethod)
			if err != nil {
				return err
			}
			return c.Reset(id)
		}},
		{"ping", (*h2client.Conn).Ping},
		{"settings", (*h2client.Conn).Settings},
	} {
		t.Run(flood.name, func(t *testing.T) {
			srv := start(t)
			stop := make(chan struct{})
			peakRSS := watchRSS(t, srv)
			polite := politeCalls(t, attack.WellBehavedIP, srv.Addr, stop)
			c, err := h2client.Dial(context.Background(), srv.Addr, h2client.WithLocalIP(attack.AttackerIP))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			begin := time.Now()
			sent := 0
			var sendErr error
			for ; sent < frames; sent++ {
				if sendErr = flood.send(c); sendErr != nil {
					break
				}
			}
			closed := c.WaitClosed(2*time.Second) == nil
			took := time.Since(begin)
			close(stop)
			peak := peakRSS()
			p := polite()
			n, slowest, errs := p.N(), p.Slowest(), p.Errs
			goAway := ""
			if g := c.GoAway(); g != nil {
				goAway = g.ErrCode.String() + " " + string(g.DebugData())
			}
			t.Logf("%s flood: %d frames sent in %s (stopped by %v); connection closed: %v, GOAWAY %q; server peak RSS %.1f MiB; the well-behaved client made %d calls, slowest %s, %d failed",
				flood.name, sent, took.Round(time.Millisecond), sendErr, closed, goAway, float64(peak)/(1<<20), n, slowest.Round(time.Millisecond), len(errs))
			if flood.name == "ping" && !strings.Contains(goAway, "too_many_pings") {
				t.Errorf("ping flood: GOAWAY %q, want too_many_pings", goAway)
			}
			checkPeakRSS(t, peak)
			for _, err := range errs {
				t.Errorf("well-behaved client: %v", err)
			}
			if n == 0 || slowest > wellBehavedBound {
				t.Errorf("well-behaved client: %d calls, slowest %s, want each within %s", n, slowest, wellBehavedBound)
			}
			if sendErr != nil && !errors.Is(sendErr, context.Canceled) && !closed {
				t.Errorf("sending failed (%v) on a connection the server did not close", sendErr)
			}
		})
	}
}
