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
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/test/bench/load"
	"github.com/acme/greeter/test/harness/binaries"
	"github.com/acme/greeter/test/harness/otlpsink"
	"github.com/acme/greeter/test/harness/process"
	"github.com/acme/greeter/test/harness/procstat"
)

// TracingConfig is what RunTracing measures.
type TracingConfig struct {
	// Rate is the unary calls per second each variant is sent: the same
	// for all, and below what each sustains, so that the CPU a call costs
	// is compared at equal load (a server doing fewer calls per second
	// batches fewer per system call, and pays more for each).
	Rate int
	// InFlight bounds the calls outstanding at once.
	InFlight int
	// Duration is how long each run drives each variant.
	Duration time.Duration
	// Runs is how many times each variant is measured, the variants taking
	// turns so that drift in the machine's speed hits them alike.
	Runs int
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

// pacedRun is one variant driven for one run.
type pacedRun struct {
	calls, failed, missed int64
	elapsed               time.Duration
	cpu                   time.Duration
}

func (r pacedRun) cpuPerCall() float64 {
	if r.calls == 0 {
		return 0
	}
	return float64(r.cpu.Nanoseconds()) / 1000 / float64(r.calls)
}

// RunTracing measures what tracing costs the greeter built from the
// repository at root: three greeters at once — no tracing, tracing every
// call, tracing one call in a hundred — each traced one exporting over
// OTLP/gRPC, with the SDK's default batching, to a real OTLP receiver of
// its own (the Collector's, test/harness/otlpsink) in this process. Each is
// sent unary SayHello calls at the same fixed rate, in turns; the calls
// carry no trace context, so each is a root and the ratio decides. It
// reports server CPU per call and the spans received per call, as
// markdown.
func RunTracing(ctx context.Context, root string, cfg TracingConfig) (string, error) {
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Rate < 1 || cfg.InFlight < 1 || cfg.Duration <= 0 || cfg.Runs < 1 {
		return "", errors.New("bench: need a rate, calls in flight, a duration and runs")
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

	servers := make([]*process.Server, len(tracingVariants))
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
		servers[i] = srv
	}

	// A warm-up run of each, not reported: the first load on a fresh
	// process also pays for its heap growing and its goroutines starting.
	// Their calls count for the spans received per call.
	warmCalls := make([]int64, len(servers))
	for i, srv := range servers {
		r, err := paced(ctx, srv, cfg, min(cfg.Duration, time.Second))
		if err != nil {
			return "", fmt.Errorf("%s warm-up: %w", tracingVariants[i].name, err)
		}
		warmCalls[i] = r.calls
	}
	results := make([][]pacedRun, len(tracingVariants))
	for run := range cfg.Runs {
		for i, srv := range servers {
			r, err := paced(ctx, srv, cfg, cfg.Duration)
			if err != nil {
				return "", fmt.Errorf("%s run %d: %w", tracingVariants[i].name, run+1, err)
			}
			results[i] = append(results[i], r)
			fmt.Fprintf(cfg.Progress, "run %d %-22s %6.0f calls/s  server CPU %6.2f µs/call\n",
				run+1, tracingVariants[i].name, float64(r.calls)/r.elapsed.Seconds(), r.cpuPerCall())
		}
	}
	// Stopping flushes what the greeters still buffer, so the receivers'
	// counts cover every call, the warm-up's included.
	spans := make([]int64, len(servers))
	for i, srv := range servers {
		if err := srv.Stop(30 * time.Second); err != nil {
			return "", fmt.Errorf("%s: %w", tracingVariants[i].name, err)
		}
		spans[i] = -1
		if receivers[i] != nil {
			spans[i] = receivers[i].SpanCount()
		}
	}
	return tracingMarkdown(cfg, results, warmCalls, spans), nil
}

// paced sends srv unary calls at cfg.Rate per second for d, at most
// cfg.InFlight outstanding, and measures the server's CPU meanwhile. A
// call the rate asks for while InFlight are outstanding is not sent and
// counted as missed: the server (or the machine) did not keep up, which
// the report shows as a rate below the one asked for.
func paced(ctx context.Context, srv *process.Server, cfg TracingConfig, d time.Duration) (pacedRun, error) {
	conns, closeAll, err := load.Dial(srv.Addr, connections(cfg.InFlight))
	if err != nil {
		return pacedRun{}, err
	}
	defer closeAll()
	clients := make([]greeterv1.GreeterServiceClient, len(conns))
	for i, cc := range conns {
		clients[i] = greeterv1.NewGreeterServiceClient(cc)
	}
	before, err := procstat.Read(srv.Pid())
	if err != nil {
		return pacedRun{}, err
	}
	var out pacedRun
	var calls, failed atomic.Int64
	tokens := make(chan struct{}, cfg.InFlight)
	var wg sync.WaitGroup
	for w := range cfg.InFlight {
		wg.Add(1)
		go func(client greeterv1.GreeterServiceClient) {
			defer wg.Done()
			req := &greeterv1.SayHelloRequest{Name: "Ada"}
			for range tokens {
				if _, err := client.SayHello(ctx, req, grpc.WaitForReady(true)); err != nil {
					failed.Add(1)
					continue
				}
				calls.Add(1)
			}
		}(clients[w%len(clients)])
	}
	// Tokens are released every millisecond, as many as the rate has
	// accumulated, so the pace holds without a timer per call.
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	var released int64 // tokens sent or missed
	for now := range tick.C {
		elapsed := now.Sub(start)
		if elapsed >= d || ctx.Err() != nil {
			break
		}
		for due := int64(elapsed.Seconds() * float64(cfg.Rate)); released < due; released++ {
			select {
			case tokens <- struct{}{}:
			default:
				out.missed++
			}
		}
	}
	tick.Stop()
	close(tokens)
	wg.Wait()
	out.elapsed = time.Since(start)
	after, err := procstat.Read(srv.Pid())
	if err != nil {
		return pacedRun{}, err
	}
	out.calls, out.failed, out.cpu = calls.Load(), failed.Load(), after.CPU-before.CPU
	if out.failed > 0 {
		return out, fmt.Errorf("%d calls failed", out.failed)
	}
	return out, nil
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

func tracingMarkdown(cfg TracingConfig, results [][]pacedRun, warmCalls, spans []int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %d cores, %s, GOMAXPROCS %d: unary SayHello at %d calls/s (at most %d in flight), "+
		"%d runs of %s per variant, taking turns; the load generator, the OTLP receivers and the greeters share the machine. "+
		"CPU is the greeter's user+system time per call; Δ is the difference of the medians from \"off\".\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), runtime.GOMAXPROCS(0),
		cfg.Rate, cfg.InFlight, cfg.Runs, cfg.Duration)
	b.WriteString("| tracing | calls/s (median) | server CPU µs/call: median | min – max | Δ vs off | spans received per call |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|\n")
	var offCPU float64
	for i, v := range tracingVariants {
		var cpus, rates []float64
		var calls int64
		for _, r := range results[i] {
			cpus = append(cpus, r.cpuPerCall())
			rates = append(rates, float64(r.calls)/r.elapsed.Seconds())
			calls += r.calls
		}
		cpu := median(cpus)
		if i == 0 {
			offCPU = cpu
		}
		received := "—"
		if spans[i] >= 0 && calls > 0 {
			received = fmt.Sprintf("%.3f", float64(spans[i])/float64(calls+warmCalls[i]))
		}
		fmt.Fprintf(&b, "| %s | %.0f | %.2f | %.2f – %.2f | %+.2f | %s |\n",
			v.name, median(rates), cpu, slices.Min(cpus), slices.Max(cpus), cpu-offCPU, received)
	}
	return b.String()
}
