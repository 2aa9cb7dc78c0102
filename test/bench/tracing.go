package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/acme/greeter/test/bench/load"
	"github.com/acme/greeter/test/harness/binaries"
	"github.com/acme/greeter/test/harness/otlpsink"
	"github.com/acme/greeter/test/harness/process"
)

// TracingConfig is what RunTracing measures.
type TracingConfig struct {
	// Duration is how long each run drives each variant.
	Duration time.Duration
	// Runs is how many times each variant is measured, the variants taking
	// turns so that drift in the machine's speed hits them alike.
	Runs int
	// Concurrency is the number of unary RPCs in flight.
	Concurrency int
	// Progress receives a line per measurement; may be nil.
	Progress io.Writer
}

// tracingVariant is one way of running the greeter.
type tracingVariant struct {
	name string
	// ratio is OTEL_TRACES_SAMPLER_ARG of parentbased_traceidratio; < 0
	// for tracing off (no OTEL_* variable at all).
	ratio float64
}

var tracingVariants = []tracingVariant{
	{name: "off", ratio: -1},
	{name: "on, sample ratio 1.0", ratio: 1},
	{name: "on, sample ratio 0.01", ratio: 0.01},
}

// RunTracing measures what tracing costs the greeter built from the
// repository at root: the same load against three greeters at once — no
// tracing, tracing every call, tracing one call in a hundred — each traced
// one exporting over OTLP/gRPC, with the SDK's default batching, to a real
// OTLP receiver of its own (the Collector's, test/harness/otlpsink) in this
// process. The load sends no trace context, so every call is a root and
// the ratio decides. It reports server CPU per RPC, throughput and the
// spans received per RPC, as markdown.
func RunTracing(ctx context.Context, root string, cfg TracingConfig) (string, error) {
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Duration <= 0 || cfg.Runs < 1 || cfg.Concurrency < 1 {
		return "", errors.New("bench: need a duration, runs and a concurrency")
	}
	bin, err := os.MkdirTemp("", "greetbench-tracing-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(bin)
	fmt.Fprintln(cfg.Progress, "building greeter ...")
	paths, err := binaries.Build(root, bin, nil, binaries.Greeter)
	if err != nil {
		return "", err
	}

	targets := make([]target, len(tracingVariants))
	receivers := make([]*otlpsink.Receiver, len(tracingVariants))
	for i, v := range tracingVariants {
		var env []string
		if v.ratio >= 0 {
			r, err := otlpsink.Start(ctx, otlpsink.CountOnly())
			if err != nil {
				return "", err
			}
			defer r.Shutdown(context.Background())
			receivers[i] = r
			env = []string{
				"OTEL_EXPORTER_OTLP_ENDPOINT=" + r.GRPCEndpoint(),
				"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
				"OTEL_TRACES_SAMPLER=parentbased_traceidratio",
				fmt.Sprintf("OTEL_TRACES_SAMPLER_ARG=%g", v.ratio),
			}
		}
		srv, err := process.StartWith(ctx, paths[0], nil, process.WithEnv(env...))
		if err != nil {
			return "", err
		}
		defer srv.Stop(30 * time.Second)
		targets[i] = target{name: v.name, srv: srv}
	}

	// A warm-up run of each, not reported: the first load on a fresh
	// process also pays for its heap growing and its goroutines starting.
	for _, t := range targets {
		if _, err := measure(ctx, t, load.Unary, cfg.Concurrency, min(cfg.Duration, time.Second)); err != nil {
			return "", fmt.Errorf("%s warm-up: %w", t.name, err)
		}
	}
	results := make([][]row, len(tracingVariants))
	for run := range cfg.Runs {
		for i, t := range targets {
			r, err := measure(ctx, t, load.Unary, cfg.Concurrency, cfg.Duration)
			if err != nil {
				return "", fmt.Errorf("%s run %d: %w", t.name, run+1, err)
			}
			results[i] = append(results[i], r)
			fmt.Fprintf(cfg.Progress, "run %d %-22s %10.0f req/s  server CPU %6.2f µs/RPC\n", run+1, t.name, r.Rate(), cpuPerOp(r))
		}
	}
	// Stopping flushes what the greeters still buffer, so the receivers'
	// counts cover every run.
	var spans []int64
	for i, t := range targets {
		if err := t.srv.Stop(30 * time.Second); err != nil {
			return "", fmt.Errorf("%s: %w", t.name, err)
		}
		n := int64(-1)
		if receivers[i] != nil {
			n = receivers[i].SpanCount()
		}
		spans = append(spans, n)
	}
	return tracingMarkdown(cfg, results, spans), nil
}

// cpuPerOp is server CPU microseconds per operation.
func cpuPerOp(r row) float64 {
	if r.Ops == 0 {
		return 0
	}
	return float64(r.cpu.Microseconds()) / float64(r.Ops)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func tracingMarkdown(cfg TracingConfig, results [][]row, spans []int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %d cores, %s, GOMAXPROCS %d: unary SayHello, %d in flight, %d runs of %s per variant, "+
		"taking turns; the load generator, the OTLP receivers and the greeters share the machine. "+
		"CPU is the greeter's user+system time per RPC; Δ is the difference of the medians from \"off\".\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), runtime.GOMAXPROCS(0),
		cfg.Concurrency, cfg.Runs, cfg.Duration)
	b.WriteString("| tracing | req/s (median) | server CPU µs/RPC: median | min – max | Δ vs off | spans received per RPC |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|\n")
	var offCPU float64
	for i, v := range tracingVariants {
		var rates, cpus []float64
		var ops int64
		for _, r := range results[i] {
			rates = append(rates, r.Rate())
			cpus = append(cpus, cpuPerOp(r))
			ops += r.Ops
		}
		cpu := median(cpus)
		if i == 0 {
			offCPU = cpu
		}
		received := "—"
		if spans[i] >= 0 && ops > 0 {
			received = fmt.Sprintf("%.3f", float64(spans[i])/float64(ops))
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %.2f – %.2f | %+.2f | %s |\n",
			v.name, median(rates), cpu, slices.Min(cpus), slices.Max(cpus), cpu-offCPU, received)
	}
	return b.String()
}
