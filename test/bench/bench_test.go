package bench_test

import (
	"context"
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
