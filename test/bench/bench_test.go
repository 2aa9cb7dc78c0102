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

// TestRun runs the whole load benchmark for a fraction of a second per row:
// it builds both servers, drives every scenario and measures idle memory,
// so `make bench` keeps working. The figures themselves are not checked:
// this is not a timed test.
func TestRun(t *testing.T) {
	md, err := bench.Run(context.Background(), repo.TestRoot(t), bench.Config{
		Duration:    150 * time.Millisecond,
		Concurrency: []int{2},
		Scenarios:   load.Scenarios,
		IdleConns:   []int{20},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| unary | 2 |", "| server-stream | 2 |", "| client-stream | 2 |", "| bidi | 2 |", "| greeter |", "| bareserver |", "RSS per idle connection (20 open)"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
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
