// Package bench is the load benchmark behind `make bench` (go tool
// greetbench): it builds the greeter server and the bare grpc-go ceiling
// (test/cmd/bareserver) from the same gen/go, starts both on loopback, and
// drives each with the same load generator (package load) at the same
// settings, one after the other, row by row. It reports throughput,
// latency, server CPU and peak RSS with the greeter/bare ratio per row,
// idle memory and memory per idle connection, as markdown. Every run is
// bounded: scenarios × concurrency levels × 2 servers × Duration, plus the
// idle-connection steps.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/acme/greeter/test/bench/load"
	"github.com/acme/greeter/test/harness/binaries"
	"github.com/acme/greeter/test/harness/process"
	"github.com/acme/greeter/test/harness/procstat"
)

// Config is what a run measures.
type Config struct {
	// Duration is how long each row drives each server.
	Duration time.Duration
	// Concurrency lists the numbers of RPCs in flight, one row each.
	Concurrency []int
	// Scenarios lists the RPC shapes.
	Scenarios []load.Scenario
	// IdleConns lists the numbers of idle connections to measure memory with.
	IdleConns []int
	// GreeterArgs are extra flags for the greeter; none means production
	// defaults.
	GreeterArgs []string
	// Progress receives a line per measurement as it is made; may be nil.
	Progress io.Writer
}

// target is one server under test.
type target struct {
	name string
	srv  *process.Server
}

// Run builds both servers from the repository at root, measures them and
// returns the report as markdown.
func Run(ctx context.Context, root string, cfg Config) (string, error) {
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Duration <= 0 || len(cfg.Concurrency) == 0 || len(cfg.Scenarios) == 0 {
		return "", errors.New("bench: need a duration, concurrency levels and scenarios")
	}
	bin, err := os.MkdirTemp("", "greetbench-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(bin)
	fmt.Fprintln(cfg.Progress, "building greeter and bareserver ...")
	paths, err := binaries.Build(root, bin, nil, binaries.Greeter, binaries.BareServer)
	if err != nil {
		return "", err
	}

	var targets []target
	for i, name := range []string{"greeter", "bareserver"} {
		var args []string
		if name == "greeter" {
			args = cfg.GreeterArgs
		}
		srv, err := process.Start(ctx, paths[i], args...)
		if err != nil {
			return "", err
		}
		defer srv.Stop(30 * time.Second)
		targets = append(targets, target{name: name, srv: srv})
	}

	report := &report{cfg: cfg}
	// Memory first, on fresh processes: after load, the Go runtime keeps
	// freed heap for a while and would inflate "idle".
	for _, t := range targets {
		idle, err := idleMemory(ctx, t, cfg.IdleConns, cfg.Progress)
		if err != nil {
			return "", fmt.Errorf("%s idle memory: %w", t.name, err)
		}
		report.idle = append(report.idle, idle)
	}
	for _, scenario := range cfg.Scenarios {
		for _, c := range cfg.Concurrency {
			var pair [2]row
			for i, t := range targets {
				r, err := measure(ctx, t, scenario, c, cfg.Duration)
				if err != nil {
					return "", fmt.Errorf("%s %s c=%d: %w", t.name, scenario, c, err)
				}
				pair[i] = r
			}
			report.rows = append(report.rows, pair)
			printRow(cfg.Progress, pair)
		}
	}
	return report.markdown(), nil
}

// row is one scenario at one concurrency against one server.
type row struct {
	server string
	load.Result
	cpu     time.Duration
	peakRSS int64
}

// cpuPer100k is server CPU seconds per 100,000 operations.
func (r row) cpuPer100k() float64 {
	if r.Ops == 0 {
		return 0
	}
	return r.cpu.Seconds() * 100_000 / float64(r.Ops)
}

// connections is how many client connections carry c in-flight RPCs:
// one per 16 RPCs, at most 8, as a load balancer or client pool would.
func connections(c int) int { return min(8, max(1, c/16)) }

func measure(ctx context.Context, t target, scenario load.Scenario, c int, d time.Duration) (row, error) {
	conns, closeAll, err := dial(t.srv.Addr, connections(c))
	if err != nil {
		return row{}, err
	}
	defer closeAll()
	pid := t.srv.Pid()
	if err := procstat.ResetPeak(pid); err != nil {
		return row{}, err
	}
	before, err := procstat.Read(pid)
	if err != nil {
		return row{}, err
	}
	res, err := load.Run(ctx, conns, load.Options{Scenario: scenario, Concurrency: c, Duration: d})
	if err != nil {
		return row{}, err
	}
	after, err := procstat.Read(pid)
	if err != nil {
		return row{}, err
	}
	if res.Failed() > 0 {
		return row{}, fmt.Errorf("%d RPCs failed: %v", res.Failed(), res.Errors)
	}
	return row{server: t.name, Result: res, cpu: after.CPU - before.CPU, peakRSS: after.PeakRSS}, nil
}

func dial(addr string, n int) ([]grpc.ClientConnInterface, func(), error) {
	var conns []grpc.ClientConnInterface
	var raw []*grpc.ClientConn
	closeAll := func() {
		for _, cc := range raw {
			cc.Close()
		}
	}
	for range n {
		cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		raw = append(raw, cc)
		conns = append(conns, cc)
	}
	return conns, closeAll, nil
}

// idle is the memory of one server with no load.
type idle struct {
	server  string
	rss     int64
	perConn map[int]float64 // idle connections → RSS bytes per connection
}

// idleMemory measures the server's RSS at rest, then with each number of
// idle client connections open (connected, no RPC), per connection.
func idleMemory(ctx context.Context, t target, steps []int, progress io.Writer) (idle, error) {
	out := idle{server: t.name, perConn: map[int]float64{}}
	base, err := settledRSS(t.srv.Pid())
	if err != nil {
		return out, err
	}
	out.rss = base
	for _, n := range steps {
		conns := make([]*grpc.ClientConn, 0, n)
		closeAll := func() {
			for _, cc := range conns {
				cc.Close()
			}
		}
		for range n {
			cc, err := grpc.NewClient("passthrough:///"+t.srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				closeAll()
				return out, err
			}
			cc.Connect()
			conns = append(conns, cc)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		for _, cc := range conns {
			for s := cc.GetState(); s != connectivity.Ready; s = cc.GetState() {
				if !cc.WaitForStateChange(wctx, s) {
					cancel()
					closeAll()
					return out, fmt.Errorf("%d connections: not ready within a minute", n)
				}
			}
		}
		cancel()
		rss, err := settledRSS(t.srv.Pid())
		closeAll()
		if err != nil {
			return out, err
		}
		out.perConn[n] = float64(rss-base) / float64(n)
		fmt.Fprintf(progress, "%-10s %5d idle connections: RSS %.1f MiB (+%.1f KiB each)\n",
			t.name, n, mib(rss), out.perConn[n]/1024)
		// Let the server notice the closed connections before the next step.
		if _, err := settledRSS(t.srv.Pid()); err != nil {
			return out, err
		}
	}
	return out, nil
}

// settledRSS waits (at most 5 s) until the RSS stops moving, then reads it.
func settledRSS(pid int) (int64, error) {
	var last int64 = -1
	for range 10 {
		s, err := procstat.Read(pid)
		if err != nil {
			return 0, err
		}
		if s.RSS == last {
			return s.RSS, nil
		}
		last = s.RSS
		time.Sleep(500 * time.Millisecond)
	}
	return last, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func printRow(w io.Writer, pair [2]row) {
	g, b := pair[0], pair[1]
	fmt.Fprintf(w, "%-14s c=%-4d greeter %10.0f/s p50 %-9v p99 %-9v | bare %10.0f/s p50 %-9v p99 %-9v | ratio %.2f\n",
		g.Scenario, g.Concurrency, g.Rate(), g.P50, g.P99, b.Rate(), b.P50, b.P99, ratio(g.Rate(), b.Rate()))
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

type report struct {
	cfg  Config
	rows [][2]row
	idle []idle
}

func (r *report) markdown() string {
	var b strings.Builder
	cpuModel := "unknown"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	fmt.Fprintf(&b, "## Load benchmark (`make bench`)\n\n")
	fmt.Fprintf(&b, "Measured %s on %d cores (%s), %s, GOMAXPROCS %d; client and servers share the machine. "+
		"Each row drives one server for %s with the same load generator (test/bench/load), the greeter first, "+
		"then the bare grpc-go server built from the same gen/go with no interceptors (test/cmd/bareserver). "+
		"Streams carry 1,000 messages per call; for streams a \"req\" is one message (server stream: a greeting "+
		"received; client stream: a name sent; bidi: a round trip). Latency: per call (unary, client stream), per "+
		"round trip (bidi), per gap between greetings (server stream). CPU is the server's user+system time. Peak RSS is the highest resident memory during the row, which includes heap the process still holds from earlier rows (the Go runtime returns freed memory to the OS gradually; the first rows follow the 5,000-connection memory step).\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), cpuModel, runtime.Version(), runtime.GOMAXPROCS(0), r.cfg.Duration)
	b.WriteString("| scenario | in flight | greeter req/s | bare req/s | ratio | greeter p50 | bare p50 | greeter p99 | bare p99 | p99 ratio | greeter CPU s/100k | bare CPU s/100k | greeter peak RSS | bare peak RSS |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.rows {
		g, bare := p[0], p[1]
		fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %.2f | %v | %v | %v | %v | %.2f | %.2f | %.2f | %.1f MiB | %.1f MiB |\n",
			g.Scenario, g.Concurrency, g.Rate(), bare.Rate(), ratio(g.Rate(), bare.Rate()),
			round(g.P50), round(bare.P50), round(g.P99), round(bare.P99), ratio(float64(g.P99), float64(bare.P99)),
			g.cpuPer100k(), bare.cpuPer100k(), mib(g.peakRSS), mib(bare.peakRSS))
	}
	b.WriteString("\n### Idle memory\n\nMeasured on freshly started processes, before any load: RSS at rest, then the RSS " +
		"each idle client connection adds (connected, no RPC), averaged over that many connections.\n\n| server | idle RSS |")
	for _, n := range r.cfg.IdleConns {
		fmt.Fprintf(&b, " RSS per idle connection (%d open) |", n)
	}
	b.WriteString("\n|---|---:|")
	for range r.cfg.IdleConns {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, i := range r.idle {
		fmt.Fprintf(&b, "| %s | %.1f MiB |", i.server, mib(i.rss))
		for _, n := range r.cfg.IdleConns {
			fmt.Fprintf(&b, " %.1f KiB |", i.perConn[n]/1024)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d >= time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}
