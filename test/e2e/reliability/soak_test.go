package reliability_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/acme/greeter/test/bench/load"
	"github.com/acme/greeter/test/harness/metrics"
)

// soakDuration is 30s, or GREETER_SOAK (a Go duration: GREETER_SOAK=10m)
// for longer runs; see docs/reliability.md.
func soakDuration(t *testing.T) time.Duration {
	v := os.Getenv("GREETER_SOAK")
	if v == "" {
		return 30 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("GREETER_SOAK=%q: want a positive Go duration such as 10m", v)
	}
	return d
}

// TestSoak drives all four RPC shapes at once, as fast as they go, for
// soakDuration, sampling the server's go_goroutines and
// go_memstats_heap_inuse_bytes every second. No RPC may fail; afterwards
// the goroutines return to the baseline; and the heap does not trend up:
// the mean of the last third of the samples is within 25% (plus 2 MiB) of
// the mean of the first third.
func TestSoak(t *testing.T) {
	dur := soakDuration(t)
	srv := startQuiet(t)
	baseGoroutines, baseHeap := gauges(t, srv.MetricsAddr)
	baseRSS := rss(t, srv.Pid())

	var conns []grpc.ClientConnInterface
	var closers []*grpc.ClientConn
	for range 4 {
		c := dialPlain(t, srv.Addr)
		conns, closers = append(conns, c), append(closers, c)
	}
	scenarios := []load.Options{
		{Scenario: load.Unary, Concurrency: 32},
		{Scenario: load.ServerStream, Concurrency: 8, StreamLength: 200},
		{Scenario: load.ClientStream, Concurrency: 8, StreamLength: 200},
		{Scenario: load.Bidi, Concurrency: 8, StreamLength: 50},
	}
	type sample struct{ goroutines, heap float64 }
	var samples []sample
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				// Not gauges: t.Fatal is for the test's own goroutine.
				if m, err := metrics.Scrape(context.Background(), srv.MetricsAddr); err == nil {
					samples = append(samples, sample{m.Sum("go_goroutines", nil), m.Sum("go_memstats_heap_inuse_bytes", nil)})
				}
			}
		}
	}()
	results := make([]load.Result, len(scenarios))
	var wg sync.WaitGroup
	for i, o := range scenarios {
		o.Duration = dur
		wg.Go(func() {
			r, err := load.Run(context.Background(), conns, o)
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		})
	}
	wg.Wait()
	close(stop)
	<-sampled
	endRSS := rss(t, srv.Pid())

	var failed int64
	for _, r := range results {
		t.Logf("soak %s: %d ops in %s (%.0f/s), p50 %s, p99 %s, errors %v",
			r.Scenario, r.Ops, r.Elapsed.Round(time.Millisecond), r.Rate(), r.P50, r.P99, r.Errors)
		failed += r.Failed()
		if r.Ops == 0 {
			t.Errorf("%s: no operation completed", r.Scenario)
		}
	}
	if failed != 0 {
		t.Errorf("%d RPCs failed during the soak, want 0", failed)
	}

	for _, c := range closers {
		c.Close()
	}
	var endGoroutines float64
	waitFor(t, 10*time.Second, "goroutines back to the baseline after the soak", func() bool {
		endGoroutines, _ = gauges(t, srv.MetricsAddr)
		return endGoroutines <= baseGoroutines+5
	})
	_, endHeap := gauges(t, srv.MetricsAddr)

	if len(samples) < 6 {
		t.Fatalf("only %d samples", len(samples))
	}
	third := len(samples) / 3
	mean := func(s []sample) float64 {
		var sum float64
		for _, x := range s {
			sum += x.heap
		}
		return sum / float64(len(s))
	}
	first, last := mean(samples[:third]), mean(samples[len(samples)-third:])
	var peakGoroutines float64
	for _, s := range samples {
		peakGoroutines = max(peakGoroutines, s.goroutines)
	}
	t.Logf("soak %s: goroutines %v before, peak %v, %v after; heap in use %.1f MiB before, mean %.1f MiB (first third) → %.1f MiB (last third), %.1f MiB after; RSS %d → %d MiB",
		dur, baseGoroutines, peakGoroutines, endGoroutines, baseHeap/(1<<20), first/(1<<20), last/(1<<20), endHeap/(1<<20), baseRSS>>20, endRSS>>20)
	if last > first*1.25+2<<20 {
		t.Errorf("heap in use trends up: %.1f MiB in the first third, %.1f MiB in the last", first/(1<<20), last/(1<<20))
	}
}
