package overload_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/test/harness/h2client"
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
		name         string
		addrs, conns int
	}{
		{"1 address × 50 connections × 100", 1, 50},
		{"50 addresses × 1 × 100", 50, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stuckReaders(t, tc.addrs, tc.conns, 100)
		})
	}
}

// stuckHold is how long the stuck readers hold their streams while the
// well-behaved client calls.
const stuckHold = 6 * time.Second

func stuckReaders(t *testing.T, addrs, connsPerAddr, perConn int) {
	srv := start(t)
	base, err := procstat.Read(srv.Pid())
	if err != nil {
		t.Fatal(err)
	}
	body, err := proto.Marshal(&greeterv1.SayHelloStreamRequest{Name: "a", Count: 10000})
	if err != nil {
		t.Fatal(err)
	}
	msg := h2client.Message(body)
	stop := make(chan struct{})
	rss := watchRSS(t, srv.Pid(), stop)
	polite := politeCalls(t, srv.Addr, stop)

	// One goroutine per connection, so that the streams open at once, as
	// a burst does.
	var (
		mu     sync.Mutex
		attack []*h2client.Conn
		wg     sync.WaitGroup
		errs   = make(chan error, addrs*connsPerAddr)
	)
	begin := time.Now()
	for a := range addrs {
		ip := attackerIP
		if addrs > 1 {
			ip = fmt.Sprintf("127.0.1.%d", a+1)
		}
		for range connsPerAddr {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				c, err := h2client.Dial(ctx, srv.Addr, h2client.WithLocalIP(ip), h2client.WithInitialWindowSize(0))
				cancel()
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				attack = append(attack, c)
				mu.Unlock()
				for range perConn {
					id, err := c.OpenStream(streamMethod)
					if err == nil {
						err = c.WriteData(id, true, msg)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	opening := time.Since(begin)
	close(errs)
	for err := range errs {
		t.Fatalf("opening the stuck readers: %v", err)
	}
	t.Cleanup(func() {
		for _, c := range attack {
			c.Close()
		}
	})
	time.Sleep(stuckHold)
	m := scrape(t, srv)
	ends := tally(attack)
	close(stop)
	peak := rss.Peak()
	p := polite()
	opened := len(attack) * perConn
	t.Logf("%d addresses × %d connections × %d stuck readers opened in %s, held %s: %d still held, ended %v; refused %v, reaped %v, pressure %.2f; server RSS %.1f → peak %.1f MiB; well-behaved client: %s",
		addrs, connsPerAddr, perConn, opening.Round(time.Millisecond), stuckHold, opened-ended(attack), ends,
		m.Sum("greeter_streams_refused_total", nil), m.Sum("greeter_streams_reaped_total", nil), m.Sum("greeter_memory_pressure", nil),
		float64(base.RSS)/(1<<20), float64(peak)/(1<<20), p)
	for _, err := range p.errs {
		t.Logf("well-behaved call failed: %v", err)
	}
	if opening > 2*time.Second {
		t.Errorf("opening %d streams took %s: not a burst", opened, opening)
	}
	if peak > rssBound {
		t.Errorf("peak RSS %.1f MiB, want under %d MiB", float64(peak)/(1<<20), rssBound>>20)
	}
	if p.n() == 0 || len(p.errs)*100 > p.n() {
		t.Errorf("well-behaved client: %s; want ≥ 99%% OK; failures: %v", p, p.errs)
	}
	if p.p99() > wellBehavedP99 {
		t.Errorf("well-behaved client: %s; want p99 under %s", p, wellBehavedP99)
	}
	for code := range ends {
		switch code {
		case codes.Unavailable.String(), codes.ResourceExhausted.String(), codes.Canceled.String():
		default:
			if !strings.HasPrefix(code, "RST_STREAM") {
				t.Errorf("a stuck reader's stream was ended with %s: want UNAVAILABLE, RESOURCE_EXHAUSTED, CANCELLED or a reset", code)
			}
		}
	}
}
