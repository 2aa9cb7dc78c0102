package bench

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/acme/greeter/test/bench/load"
)

// Targets of issue 13, marked in the report.
const (
	cpuTarget = 1.15 // server CPU per request, greeter / bare
	p99Target = 1.2  // p99 latency, greeter / bare
)

// total is the sum of a server's runs in a row.
type total struct {
	ops            int64
	elapsed, cpu   time.Duration
	p99Sum         time.Duration
	peakRSS        int64
	roundCPUPerOps []float64
	rounds         int
}

func sum(runs []run) total {
	var t total
	for _, r := range runs {
		t.ops += r.ops
		t.elapsed += r.elapsed
		t.cpu += r.cpu
		t.p99Sum += r.p99
		t.peakRSS = max(t.peakRSS, r.peakRSS)
		t.roundCPUPerOps = append(t.roundCPUPerOps, perOp(r.cpu, r.ops))
		t.rounds++
	}
	return t
}

// perOp is CPU microseconds per operation.
func perOp(cpu time.Duration, ops int64) float64 {
	if ops == 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(ops)
}

func (t total) cpuPerOp() float64 { return perOp(t.cpu, t.ops) }

func (t total) rate() float64 {
	if t.elapsed <= 0 {
		return 0
	}
	return float64(t.ops) / t.elapsed.Seconds()
}

func (t total) p99() time.Duration {
	if t.rounds == 0 {
		return 0
	}
	return t.p99Sum / time.Duration(t.rounds)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// cpuRatio is the median of the per-round ratios of greeter to bare CPU
// per operation, and the lowest and highest of them. A round's two runs
// share the machine's state of the moment, so the median of their ratios
// resists one disturbed round better than the ratio of the row's totals.
func (r row) cpuRatio() (median, lo, hi float64) {
	g, b := sum(r.runs[0]), sum(r.runs[1])
	var ratios []float64
	for i := range min(len(g.roundCPUPerOps), len(b.roundCPUPerOps)) {
		ratios = append(ratios, ratio(g.roundCPUPerOps[i], b.roundCPUPerOps[i]))
	}
	if len(ratios) == 0 {
		return ratio(g.cpuPerOp(), b.cpuPerOp()), 0, 0
	}
	slices.Sort(ratios)
	n := len(ratios)
	median = ratios[n/2]
	if n%2 == 0 {
		median = (ratios[n/2-1] + ratios[n/2]) / 2
	}
	return median, ratios[0], ratios[n-1]
}

// summary is the progress line of a row.
func (r row) summary() string {
	g, b := sum(r.runs[0]), sum(r.runs[1])
	all, lo, hi := r.cpuRatio()
	return fmt.Sprintf("%-9s %-16s c=%-4d CPU/op greeter %7.2fµs bare %7.2fµs ratio %.2f (%.2f–%.2f) | %9.0f/s vs %9.0f/s | p99 %v vs %v",
		r.gen, r.scenario, r.c, g.cpuPerOp(), b.cpuPerOp(), all, lo, hi, g.rate(), b.rate(), round(g.p99()), round(b.p99()))
}

type report struct {
	cfg        Config
	pins       pins
	commit     string
	ghzVersion string
	rows       []row
	throughput []row
	httpRows   []row
	idle       []idle
	capacity   []capacityRow
	overload   []overloadRow
	took       time.Duration
	// tookFor is how long each section's table took.
	tookFor map[string]time.Duration
}

func unit(s load.Scenario) string {
	switch s {
	case load.ServerStream:
		return "greeting received"
	case load.ClientStream:
		return "name sent"
	case load.Bidi:
		return "round trip"
	}
	return "call"
}

// perSecond names a scenario's operations in a rate.
func perSecond(s load.Scenario) string {
	switch s {
	case load.ServerStream:
		return "greetings"
	case load.ClientStream:
		return "names"
	case load.Bidi:
		return "round trips"
	}
	return "calls"
}

// machine says where and with what the report was measured.
func (r *report) machine() string {
	cpuModel := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s at commit %s on %d cores (%s), %s", time.Now().UTC().Format("2006-01-02"), r.commit, runtime.NumCPU(), cpuModel, runtime.Version())
}

// report builds the Report: a section for each table measured. A section
// of a run that measured only some says when and how it was measured, as
// the CPU rows' introduction, which stays, does not.
func (r *report) report() Report {
	var out Report
	partial := len(r.tookFor) < len(sectionOrder)
	for _, name := range sectionOrder {
		took, ok := r.tookFor[name]
		if !ok {
			continue
		}
		var b strings.Builder
		r.section(&b, name)
		if partial && name != sectionCPU {
			fmt.Fprintf(&b, "This table alone: measured %s, in %s.\n", r.machine(), took.Round(time.Second))
		}
		out.sections = append(out.sections, section{name: name, markdown: b.String()})
	}
	return out
}

// section writes section name of the report.
func (r *report) section(w *strings.Builder, name string) {
	switch name {
	case sectionCPU:
		r.cpuMarkdown(w)
	case sectionHTTP:
		r.httpMarkdown(w)
	case sectionThroughput:
		r.throughputMarkdown(w)
	case sectionCapacity:
		capacityMarkdown(w, r.capacity)
	case sectionOverload:
		overloadMarkdown(w, r.overload, r.cfg.Rounds)
	case sectionIdle:
		r.idleMarkdown(w)
	}
}

// cpuMarkdown is the CPU rows' section: how the benchmark measures, and a
// table for each generator.
func (r *report) cpuMarkdown(b *strings.Builder) {
	placement := fmt.Sprintf("the server under test pinned to CPU %s and the load generator to CPU %s (`taskset`), so the server runs with GOMAXPROCS 1", r.pins.server, r.pins.client)
	if !r.pins.pinned() {
		placement = "server and load generator unpinned, sharing the machine (" + r.pins.why + ")"
	}
	ghz := "ghz"
	if r.ghzVersion != "" {
		ghz += " " + r.ghzVersion
	}
	fmt.Fprintf(b, "Measured %s; %s. "+
		"The greeter runs with its production defaults%s; the bare server is grpc-go with `grpc.NewServer()`'s defaults serving the same contracts from the same gen/go (test/cmd/bareserver). "+
		"Each row alternates greeter and bare, %d rounds, each run a %s warm-up then %s measured, all in this one run (%s in all); greetload warms up and measures in one process and reports when its measured window begins and ends, ghz warms up in a run of its own and finishes every call it started (`--duration-stop wait`). "+
		"**Server CPU per request** is the server process's user+system time (/proc/PID/stat) over the requests completed; for streams a request is one message (server stream: a greeting received; client stream: a name sent; bidi: a round trip), and streams carry %d messages per call. "+
		"The **ratio** is the median of the rounds' ratios (each round's greeter run over its bare run); \"per round\" is the lowest and highest of them: the machine's noise. "+
		"p99 is per call (unary, client stream, and every ghz stream), per round trip (greetload bidi) and per gap between greetings (greetload server stream), averaged over the rounds. "+
		"Peak RSS is the server's highest resident memory during the row's measured runs. "+
		"Targets (issue 13): server CPU per request ≤ %.2f× bare, p99 ≤ %.1f× bare.\n\n",
		r.machine(), placement,
		greeterArgs(r.cfg.GreeterArgs), r.cfg.Rounds, r.cfg.Warmup, r.cfg.Duration, r.took.Round(time.Second), streamLength, cpuTarget, p99Target)

	for _, g := range r.cfg.Generators {
		name := "greetload (test/bench/load, a process of its own)"
		if g == Ghz {
			name = ghz + ", pinned as a tool of the test module"
		}
		fmt.Fprintf(b, "### Load generator: %s\n\n", name)
		b.WriteString("| scenario | in flight | server CPU per request, greeter | bare | **ratio** | per round | greeter p99 | bare p99 | p99 ratio | greeter req/s | bare req/s | greeter peak RSS | bare peak RSS |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, row := range r.rows {
			if row.gen != g {
				continue
			}
			gt, bt := sum(row.runs[0]), sum(row.runs[1])
			all, lo, hi := row.cpuRatio()
			p99r := ratio(float64(gt.p99()), float64(bt.p99()))
			fmt.Fprintf(b, "| %s (per %s) | %d | %.2f µs | %.2f µs | **%.2f**%s | %.2f–%.2f | %v | %v | %.2f%s | %.0f | %.0f | %.1f MiB | %.1f MiB |\n",
				row.scenario, unit(row.scenario), row.c, gt.cpuPerOp(), bt.cpuPerOp(), all, missed(all, cpuTarget), lo, hi,
				round(gt.p99()), round(bt.p99()), p99r, missed(p99r, p99Target), gt.rate(), bt.rate(), mib(gt.peakRSS), mib(bt.peakRSS))
		}
		b.WriteString("\n")
	}
}

// httpMarkdown is the HTTP port's section.
func (r *report) httpMarkdown(b *strings.Builder) {
	b.WriteString("### HTTP port (Connect), load generator: h2load\n\n" +
		"The greeter's HTTP port (`--http-addr`: connect-go handlers calling the services through the gRPC port's interceptor chain and stats handlers, every interceptor and limit on) against a bare connect-go server of the same methods with its defaults (test/bench/bare, `bareserver --http-addr`), " +
		"driven by h2load (nghttp2-client) with one fixed body, pinned and alternating as above; h2load warms up in a run of its own. " +
		"h2c rows spread the calls in flight over connections as the gRPC rows do; HTTP/1.1 rows use one connection per call in flight. " +
		"Goal (issue 22): server CPU per request ≤ 1.0× bare connect-go.\n\n")
	b.WriteString("| scenario | in flight | server CPU per request, greeter | bare connect-go | **ratio** | per round | greeter req/s | bare req/s | greeter peak RSS | bare peak RSS |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range r.httpRows {
		gt, bt := sum(row.runs[0]), sum(row.runs[1])
		all, lo, hi := row.cpuRatio()
		per := "call"
		if strings.Contains(string(row.scenario), "stream") {
			per = "greeting received"
		}
		fmt.Fprintf(b, "| %s (per %s) | %d | %.2f µs | %.2f µs | **%.2f**%s | %.2f–%.2f | %.0f | %.0f | %.1f MiB | %.1f MiB |\n",
			row.scenario, per, row.c, gt.cpuPerOp(), bt.cpuPerOp(), all, missed(all, 1.0), lo, hi, gt.rate(), bt.rate(), mib(gt.peakRSS), mib(bt.peakRSS))
	}
	b.WriteString("\n")
}

// throughputMarkdown is the streaming throughput section.
func (r *report) throughputMarkdown(b *strings.Builder) {
	b.WriteString("### Streaming throughput\n\n" +
		"What the whole machine reaches: fresh greeter and bare servers and greetload, all unpinned, sharing the cores (GOMAXPROCS " +
		fmt.Sprint(runtime.NumCPU()) + " each). Targets (issue 13): server streaming ≥ 1,000,000 greetings/s, bidi ≥ 300,000 round trips/s.\n\n")
	b.WriteString("| scenario | streams in flight | greeter | bare | ratio | server CPU per message, greeter | bare | ratio |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range r.throughput {
		gt, bt := sum(row.runs[0]), sum(row.runs[1])
		all, _, _ := row.cpuRatio()
		fmt.Fprintf(b, "| %s | %d | %.0f %s/s | %.0f | %.2f | %.2f µs | %.2f µs | %.2f |\n",
			row.scenario, row.c, gt.rate(), perSecond(row.scenario), bt.rate(), ratio(gt.rate(), bt.rate()), gt.cpuPerOp(), bt.cpuPerOp(), all)
	}
	b.WriteString("\n")
}

// idleMarkdown is the idle memory section.
func (r *report) idleMarkdown(b *strings.Builder) {
	b.WriteString("### Idle memory\n\nMeasured on freshly started processes, before any load: RSS at rest, then the RSS " +
		"each idle client connection adds (connected, no RPC), averaged over that many connections. Target (issue 13): idle RSS < 30 MiB.\n\n| server | idle RSS |")
	for _, n := range r.cfg.IdleConns {
		fmt.Fprintf(b, " RSS per idle connection (%d open) |", n)
	}
	b.WriteString("\n|---|---:|")
	for range r.cfg.IdleConns {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, i := range r.idle {
		fmt.Fprintf(b, "| %s | %.1f MiB |", i.server, mib(i.rss))
		for _, n := range r.cfg.IdleConns {
			fmt.Fprintf(b, " %.1f KiB |", i.perConn[n]/1024)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

// missed marks a ratio above its target.
func missed(x, target float64) string {
	if x > target {
		return " ✗"
	}
	return ""
}

func greeterArgs(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return " plus `" + strings.Join(args, " ") + "`"
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
