package overload_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/test/harness/h2client"
	"github.com/acme/greeter/test/harness/procstat"
)

// TestIdleMultitude is the idle crowd at scale: 50 addresses
// (127.0.2.1–127.0.2.50) × 200 connections that complete the HTTP/2
// handshake and open no stream, 10,000 in all, more than bare grpc-go holds
// in 200 MiB (an idle connection measures 21.3 KiB). While they dial and
// for idleHold after, a well-behaved client on 127.0.0.1 calling SayHello
// every 20 ms and a health probe on a fresh connection every second are
// all served, a new client's first call too, and the server's peak RSS
// stays under rssBound: the connection cap (2,048 at 256 MiB) holds the
// crowd's memory, newcomers take the place of the idlest, and from half
// the cap idle connections are closed after a timeout that shrinks with
// the count.
//
// The bound can fail: GREETER_IDLE_MAX_CONNECTIONS=20000 runs it with the
// cap raised past the crowd (docs/reliability.md, "Measured: the idle
// crowd", has what that reached).
func TestIdleMultitude(t *testing.T) {
	const (
		addrs    = 50
		perAddr  = 200
		idleHold = 3 * time.Second
	)
	var args []string
	if n := os.Getenv("GREETER_IDLE_MAX_CONNECTIONS"); n != "" {
		if _, err := strconv.Atoi(n); err != nil {
			t.Fatalf("GREETER_IDLE_MAX_CONNECTIONS=%q: %v", n, err)
		}
		args = append(args, "--max-connections", n)
	}
	srv := start(t, args...)
	base, err := procstat.Read(srv.Pid())
	if err != nil {
		t.Fatal(err)
	}
	maxConns := int(scrape(t, srv).Sum("greeter_limit", map[string]string{"limit": "max-connections"}))
	stop := make(chan struct{})
	rss := watchRSS(t, srv.Pid(), stop)
	polite := politeCalls(t, srv.Addr, stop)
	probes := probeEverySecond(srv.Addr, stop)

	begin := time.Now()
	var (
		mu     sync.Mutex
		crowd  []*h2client.Conn
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	t.Cleanup(func() {
		for _, c := range crowd {
			c.Close()
		}
	})
	for a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ip := fmt.Sprintf("127.0.2.%d", a+1)
			for range perAddr {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				c, err := h2client.Dial(ctx, srv.Addr, h2client.WithLocalIP(ip))
				cancel()
				if err != nil {
					failed.Add(1)
					continue
				}
				mu.Lock()
				crowd = append(crowd, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	dialed := time.Since(begin)
	time.Sleep(idleHold)

	newcomer := greeterv1.NewGreeterServiceClient(dialFrom(t, "127.0.0.4", srv.Addr))
	ctx, cancel := context.WithTimeout(context.Background(), wellBehavedBound)
	_, newErr := newcomer.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "Ada"})
	cancel()
	close(stop)
	peak := rss.Peak()
	p := polite()
	probed, probeErrs := probes()
	m := scrape(t, srv)
	open := int(m.Sum("greeter_connections", nil))
	evicted := func(limit string) float64 {
		return m.Sum("greeter_connections_evicted_total", map[string]string{"limit": limit})
	}
	t.Logf("%d × %d idle connections dialed in %s (%d failed), held %s; --max-connections %d, %d open; evicted at max-connections %v, per client %v, idle timeout %v, max-rpc-memory %v; refused %v; memory pressure %.2f; server RSS %.1f → peak %.1f MiB; well-behaved client: %s; probes %d of %d SERVING",
		addrs, perAddr, dialed.Round(time.Millisecond), failed.Load(), idleHold, maxConns, open,
		evicted("max-connections"), evicted("max-connections-per-client"), evicted("idle-timeout"), evicted("max-rpc-memory"),
		m.Sum("greeter_connections_refused_total", nil), m.Sum("greeter_memory_pressure", nil), float64(base.RSS)/(1<<20), float64(peak)/(1<<20), p, probed-len(probeErrs), probed)
	if peak > rssBound {
		t.Errorf("peak RSS %.1f MiB, want under %d MiB", float64(peak)/(1<<20), rssBound>>20)
	}
	if p.n() == 0 {
		t.Error("the well-behaved client made no call")
	} else if len(p.errs) > 0 {
		t.Errorf("well-behaved client: %s; want every call OK; first failure: %v", p, p.errs[0])
	}
	if probed == 0 || len(probeErrs) > 0 {
		t.Errorf("%d of %d probes on fresh connections failed: %v", len(probeErrs), probed, probeErrs[:min(3, len(probeErrs))])
	}
	if newErr != nil {
		t.Errorf("a new client's first call, the server full of idle connections: %v", newErr)
	}
	if open > maxConns {
		t.Errorf("greeter_connections = %d, over --max-connections %d", open, maxConns)
	}
	if addrs*perAddr > maxConns && evicted("idle-timeout") == 0 {
		t.Errorf("no connection closed for its idle timeout, %s after %d connections dialed at a cap of %d", idleHold, addrs*perAddr, maxConns)
	}
}

// probeEverySecond checks health on a fresh connection from healthIP every
// second until stop, and reports how many it made and how they failed.
func probeEverySecond(addr string, stop <-chan struct{}) func() (int, []error) {
	var (
		n    int
		errs []error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			n++
			conn, err := dialFromNoT(healthIP, addr)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), wellBehavedBound)
			resp, err := healthgrpc.NewHealthClient(conn).Check(ctx, &healthgrpc.HealthCheckRequest{})
			cancel()
			conn.Close()
			if err == nil && resp.GetStatus() != healthgrpc.HealthCheckResponse_SERVING {
				err = fmt.Errorf("status %v", resp.GetStatus())
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("probe %d: %w", n, err))
			}
		}
	}()
	return func() (int, []error) {
		<-done
		return n, errs
	}
}
