package bench_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acme/greeter/test/bench"
	"github.com/acme/greeter/test/bench/load"
	"github.com/acme/greeter/test/harness/repo"
)

// logWriter sends each progress line to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestRun runs the whole load benchmark for a fraction of a second per run:
// it builds the servers and both load generators (ghz too), drives every
// scenario with each, pinned to CPUs of their own where taskset and two
// CPUs allow (the log's first line says which), measures the throughput
// rows and idle memory, and runs every attack of the overload table at a
// hundredth of its counts and holds, so `make bench` keeps working. The
// figures themselves are not checked: this is not a timed test.
func TestRun(t *testing.T) {
	rep, err := bench.Run(context.Background(), repo.TestRoot(t), bench.Config{
		Duration:    150 * time.Millisecond,
		Warmup:      50 * time.Millisecond,
		Rounds:      1,
		Concurrency: []int{2},
		Scenarios:   load.Scenarios,
		Generators:  bench.Generators,
		Throughput:  []int{2},
		IdleConns:   []int{20},
		// h2load runs at least 1s: four scenarios, two servers, warm-up
		// and measured, 16s.
		HTTPConcurrency: []int{2},
		// Each attack at a hundredth: 12 fresh servers, about 10s.
		Overload:      bench.Attacks,
		OverloadScale: 0.01,
		Progress:      logWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	md := rep.Markdown()
	want := []string{"### Load generator: greetload", "### Load generator: ghz v", "### Streaming throughput", "### HTTP port (Connect)",
		"| connect-json unary h2c (per call) | 2 |", "| connect-proto server stream h2c (per greeting received) | 2 |",
		"| server-stream | 2 |", "| bidi | 2 |", "| greeter |", "| bareserver |", "RSS per idle connection (20 open)",
		"### Overload at the default memory plan", "| stuck readers: 1 address × 1 connections × 1 streams, ", "| stuck readers: 1 addresses × 1 connection × 1 streams, ",
		"| idle connections: 1 addresses × 2, ", "| health holders: 1 addresses × 1 `Check` + 1 `Watch`", "| HTTP holders: 1 addresses × 1 HTTP/1.1", "| crowd: 1 addresses × 1 connections × 1 streams",
		"probes — (no health service)", "<!-- greetbench:overload -->", "<!-- /greetbench:idle -->"}
	for _, s := range load.Scenarios {
		want = append(want, "| "+string(s)+" (per ")
	}
	for _, w := range want {
		if !strings.Contains(md, w) {
			t.Errorf("report lacks %q:\n%s", w, md)
		}
	}
	// Every row of both generators' tables.
	if n := strings.Count(md, " | 2 | "); n != 2*len(load.Scenarios)+2+len(bench.HTTPScenarioKeys()) {
		t.Errorf("%d rows at 2 in flight, want %d:\n%s", n, 2*len(load.Scenarios)+2+len(bench.HTTPScenarioKeys()), md)
	}
}

// TestRunTracing runs the tracing benchmark for a fraction of a second per
// run, so that `go tool tracebench` keeps working; it checks that traced
// greeters exported into the receivers, not any figure.
func TestRunTracing(t *testing.T) {
	md, err := bench.RunTracing(context.Background(), repo.TestRoot(t), bench.TracingConfig{
		Rate:     200,
		InFlight: 4,
		Duration: 150 * time.Millisecond,
		Runs:     1,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| off | ", "| on, sample ratio 1.0 | ", "| on, sample ratio 0.01 | "} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	// Every call of the 1.0 run, and the warm-up's, is a span received.
	m := regexp.MustCompile(`\| on, sample ratio 1\.0 \|.* \| (\d+\.\d+) \|\n`).FindStringSubmatch(md)
	if m == nil {
		t.Fatalf("no spans received per call for sample ratio 1.0:\n%s", md)
	}
	if perCall, _ := strconv.ParseFloat(m[1], 64); perCall < 0.99 || perCall > 1.01 {
		t.Errorf("sample ratio 1.0: %v spans received per call, want 1:\n%s", perCall, md)
	}
}
