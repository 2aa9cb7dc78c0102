// Package bench is the load benchmark behind `make bench` (go tool
// greetbench): the greeter server against the bare grpc-go ceiling
// (test/cmd/bareserver), both built from the same gen/go, measured from
// outside the way a user would measure a server they consider running.
//
//   - The server under test is pinned to one CPU and the load generator to
//     another (taskset), so neither takes cycles from the other; on a machine
//     without taskset or a second CPU they run unpinned, and the report says
//     so.
//   - The load generators are processes of their own: greetload (package
//     load) and ghz, pinned as a tool of this module, whose numbers do not
//     depend on any code of ours.
//   - The figure that counts is server CPU per request: the server process's
//     user+system time from /proc/<pid>/stat over the requests completed. A
//     generator that saturates its own CPU bounds req/s, not this.
//   - Greeter and bare run alternately, A B A B, each run after a warm-up
//     of its own, in one run: the machine's noise reaches both alike, and
//     ratios are taken within a row.
//
// Every run is bounded: generators × scenarios × concurrency levels ×
// 2 servers × Rounds × (Warmup + Duration), the throughput rows, the idle
// memory steps, and the capacity and overload rows, each a fresh server
// held for a fixed time.
//
// Each table is measured when its Config field asks for it, and is a
// section of the Report of its own, so that a run of some tables updates
// only theirs in docs/performance.md.
package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
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
	// Duration is how long each measured run drives one server.
	Duration time.Duration
	// Warmup is how long each server is driven, unmeasured, before each
	// measured run.
	Warmup time.Duration
	// Rounds is how many times each row alternates greeter and bare.
	Rounds int
	// Concurrency lists the numbers of RPCs in flight, one row each.
	Concurrency []int
	// Scenarios lists the RPC shapes.
	Scenarios []load.Scenario
	// Generators lists the load generators; each measures every row.
	Generators []Generator
	// Throughput lists the numbers of streams in flight of the streaming
	// throughput rows (server stream and bidi, server and generator
	// unpinned, sharing the machine); none leaves them out.
	Throughput []int
	// IdleConns lists the numbers of idle connections to measure memory with.
	IdleConns []int
	// Capacity lists the numbers of slow streams of the capacity rows,
	// held at once against the greeter at its default memory plan; none
	// leaves them out.
	Capacity []int
	// Overload lists the attacks of the overload table (overload.go),
	// against the greeter at its default memory plan; none leaves it out.
	Overload []Attack
	// OverloadScale is the share of the attacks' full counts and holds
	// the overload table runs, for a quick run; 0 runs them in full.
	OverloadScale float64
	// HTTPConcurrency lists the numbers of calls in flight of the HTTP
	// port's rows (h2load, greeter vs bare connect-go); none leaves them
	// out.
	HTTPConcurrency []int
	// HTTPScenarios names the HTTP rows to measure (HTTPScenarioKeys);
	// none measures them all.
	HTTPScenarios []string
	// GreeterArgs are extra flags for the greeter; none means production
	// defaults, planned for a pod of benchMemoryLimit.
	GreeterArgs []string
	// GreeterBin, if set, is the greeter binary to measure instead of one
	// built from the repository: an earlier build, to compare with.
	GreeterBin string
	// Progress receives a line per measurement as it is made; may be nil.
	Progress io.Writer
}

// Generator is a load generator.
type Generator string

// The load generators.
const (
	// GreetLoad is this module's generator (package load, test/cmd/greetload).
	GreetLoad Generator = "greetload"
	// Ghz is ghz (ghz.sh), at the version test/go.mod pins.
	Ghz Generator = "ghz"
)

// Generators lists every generator in report order.
var Generators = []Generator{GreetLoad, Ghz}

// streamLength is the number of messages of every streaming call.
const streamLength = 1000

// target is one server under test.
type target struct {
	name string
	srv  *process.Server
}

// benchMemoryLimit is the memory the benchmark's greeter plans for
// (--memory-limit) in the CPU rows: a 2 GiB pod, as since issue 15, when
// the default 256 MiB admitted 68 response streams from one client, so
// that those rows compare across runs; every limit stays on, sized for the
// larger pod. The capacity rows (capacity.go) use the default plan.
const benchMemoryLimit = 2 << 30

// bench is one run in progress.
type bench struct {
	cfg      Config
	pins     pins
	bins     map[string]string // command name → path
	protoset string            // for ghz
	// capacityArgs are the greeter's flags for the capacity rows: the
	// caller's, without the CPU rows' larger memory plan.
	capacityArgs []string
}

// Run builds the servers and the generators from the repository at root,
// measures the tables cfg asks for and returns the report.
func Run(ctx context.Context, root string, cfg Config) (Report, error) {
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	timed := len(cfg.Scenarios) > 0 || len(cfg.HTTPConcurrency) > 0 || len(cfg.Throughput) > 0
	switch {
	case cfg.Rounds < 1:
		return Report{}, errors.New("bench: need at least one round")
	case timed && (cfg.Duration <= 0 || cfg.Warmup < 0):
		return Report{}, errors.New("bench: need a duration and a warm-up of 0 or more")
	case len(cfg.Scenarios) > 0 && (len(cfg.Concurrency) == 0 || len(cfg.Generators) == 0):
		return Report{}, errors.New("bench: need concurrency levels and generators for the scenarios")
	case !timed && len(cfg.Capacity) == 0 && len(cfg.Overload) == 0:
		return Report{}, errors.New("bench: nothing to measure: no scenarios, HTTP, throughput, capacity or overload rows")
	}
	known := HTTPScenarioKeys()
	for _, s := range cfg.HTTPScenarios {
		if !slices.Contains(known, s) {
			return Report{}, fmt.Errorf("bench: unknown HTTP scenario %q (known: %s)", s, strings.Join(known, ", "))
		}
	}
	for _, s := range cfg.Scenarios {
		if _, ok := ghzCalls[s]; !ok {
			return Report{}, fmt.Errorf("bench: unknown scenario %q", s)
		}
	}
	if _, err := overloadSpecs(cfg.Overload, 1); err != nil {
		return Report{}, err
	}
	capacityArgs := cfg.GreeterArgs
	// An earlier build (GreeterBin) may predate the flag.
	if cfg.GreeterBin == "" && process.FlagValue(cfg.GreeterArgs, "--memory-limit") == "" {
		cfg.GreeterArgs = append([]string{"--memory-limit=" + strconv.Itoa(benchMemoryLimit)}, cfg.GreeterArgs...)
	}
	started := time.Now()
	b := &bench{cfg: cfg, pins: choosePins(), bins: map[string]string{}, capacityArgs: capacityArgs}
	fmt.Fprintln(cfg.Progress, b.pins.describe())

	dir, err := os.MkdirTemp("", "greetbench-")
	if err != nil {
		return Report{}, err
	}
	defer os.RemoveAll(dir)
	if err := b.build(root, dir); err != nil {
		return Report{}, err
	}

	built := commit(root)
	if cfg.GreeterBin != "" {
		built += ", measuring the greeter binary " + cfg.GreeterBin
	}
	rep := &report{cfg: cfg, pins: b.pins, commit: built, ghzVersion: moduleVersion(b.bins[binaries.Ghz.Name], "github.com/bojand/ghz"),
		tookFor: map[string]time.Duration{}}
	// Each table in turn, timed, when cfg asks for it.
	for _, t := range []struct {
		sections []string
		asked    bool
		measure  func() error
	}{
		{[]string{sectionCapacity}, len(cfg.Capacity) > 0, func() error { return b.capacityRows(ctx, rep) }},
		{[]string{sectionOverload}, len(cfg.Overload) > 0, func() error { return b.overloadRows(ctx, rep) }},
		{[]string{sectionIdle, sectionCPU}, len(cfg.Scenarios) > 0, func() error { return b.pinnedRows(ctx, rep) }},
		{[]string{sectionHTTP}, len(cfg.HTTPConcurrency) > 0, func() (err error) {
			if rep.httpRows, err = b.httpRows(ctx, dir); err != nil {
				return fmt.Errorf("HTTP port: %w", err)
			}
			return nil
		}},
		{[]string{sectionThroughput}, len(cfg.Throughput) > 0, func() error { return b.throughputRows(ctx, rep) }},
	} {
		if !t.asked {
			continue
		}
		begin := time.Now()
		if err := t.measure(); err != nil {
			return Report{}, err
		}
		for _, s := range t.sections {
			rep.tookFor[s] = time.Since(begin)
		}
	}
	rep.took = time.Since(started)
	return rep.report(), nil
}

// start starts the greeter and the bare server, on cpus when not empty.
func (b *bench) start(ctx context.Context, cpus string) ([]target, func(), error) {
	var targets []target
	stop := func() {
		for _, t := range targets {
			_ = t.srv.Stop(30 * time.Second)
		}
	}
	for _, name := range []string{binaries.Greeter.Name, binaries.BareServer.Name} {
		var args []string
		if name == binaries.Greeter.Name {
			args = b.cfg.GreeterArgs
		}
		var opts []process.StartOption
		if cpus != "" {
			opts = append(opts, process.WithCPUs(cpus))
		}
		srv, err := process.StartWith(ctx, b.bins[name], args, opts...)
		if err != nil {
			stop()
			return nil, nil, err
		}
		targets = append(targets, target{name: name, srv: srv})
	}
	return targets, stop, nil
}

// run is what one generator run measured.
type run struct {
	// ops is the operations completed: calls, or messages for streams.
	ops      int64
	elapsed  time.Duration
	p50, p99 time.Duration
	// cpu is the server's CPU time over the run, peakRSS its highest RSS.
	cpu     time.Duration
	peakRSS int64
}

// row is one generator, scenario and concurrency against both servers:
// runs[0] the greeter's, runs[1] the bare server's, one per round.
type row struct {
	gen      Generator
	scenario load.Scenario
	c        int
	runs     [2][]run
}

// row measures one row: Rounds rounds of greeter then bare, each run
// after a warm-up of its own.
func (b *bench) row(ctx context.Context, targets []target, g Generator, scenario load.Scenario, c int, cpus string) (row, error) {
	r := row{gen: g, scenario: scenario, c: c}
	for range b.cfg.Rounds {
		for i, t := range targets {
			m, err := b.drive(ctx, g, t, scenario, c, cpus)
			if err != nil {
				return r, fmt.Errorf("%s: %w", t.name, err)
			}
			r.runs[i] = append(r.runs[i], m)
		}
	}
	return r, nil
}

// drive warms t up and measures it once with generator g, run on cpus when
// not empty.
//
// greetload warms up and measures in one process, and says when its
// measured window begins and ends, which is when the server's CPU time is
// read. ghz cannot, so it warms up in a run of its own, and the measured
// run is all of its second: once its duration has passed, ghz starts no
// new call and waits for those in flight (--duration-stop wait), so every
// call that reached the server is complete and counted.
func (b *bench) drive(ctx context.Context, g Generator, t target, scenario load.Scenario, c int, cpus string) (run, error) {
	var prefix []string
	if cpus != "" {
		prefix = []string{"taskset", "-c", cpus}
	}
	pid := t.srv.Pid()
	var before procstat.Sample
	measure := func() error {
		if err := procstat.ResetPeak(pid); err != nil {
			return err
		}
		var err error
		before, err = procstat.Read(pid)
		return err
	}
	var m run
	switch g {
	case GreetLoad:
		argv := append(prefix, b.bins[binaries.GreetLoad.Name])
		argv = append(argv, greetloadArgs(t.srv.Addr, scenario, c, b.cfg.Warmup, b.cfg.Duration)...)
		var after procstat.Sample
		out, err := runGenerator(ctx, argv, b.cfg.Warmup+b.cfg.Duration, func(line string) (bool, error) {
			switch line {
			case load.MeasuringLine:
				return true, measure()
			case load.MeasuredLine:
				var err error
				after, err = procstat.Read(pid)
				return true, err
			}
			return false, nil
		})
		if err != nil {
			return run{}, err
		}
		if after.CPU == 0 {
			return run{}, fmt.Errorf("greetload did not report its measured window:\n%s", out)
		}
		if m, err = parseGreetload(out); err != nil {
			return run{}, err
		}
		m.cpu, m.peakRSS = after.CPU-before.CPU, after.PeakRSS
	case Ghz:
		call := func(d time.Duration) (run, error) {
			args, err := ghzArgs(b.protoset, t.srv.Addr, scenario, c, d, cpus != "")
			if err != nil {
				return run{}, err
			}
			out, err := runGenerator(ctx, append(append(prefix, b.bins[binaries.Ghz.Name]), args...), d, nil)
			if err != nil {
				return run{}, err
			}
			return parseGhz(out, scenario)
		}
		if b.cfg.Warmup > 0 {
			if _, err := call(b.cfg.Warmup); err != nil {
				return run{}, fmt.Errorf("warm-up: %w", err)
			}
		}
		if err := measure(); err != nil {
			return run{}, err
		}
		var err error
		if m, err = call(b.cfg.Duration); err != nil {
			return run{}, err
		}
		after, err := procstat.Read(pid)
		if err != nil {
			return run{}, err
		}
		m.cpu, m.peakRSS = after.CPU-before.CPU, after.PeakRSS
	}
	return m, nil
}

// runGenerator runs argv, a load generator meant to take about d, and
// returns what it printed, less the lines onLine (if not nil) takes: it is
// handed each line as it is printed.
func runGenerator(ctx context.Context, argv []string, d time.Duration, onLine func(string) (bool, error)) ([]byte, error) {
	// A generator gets its run's time and a minute more to connect,
	// finish the calls in flight and report.
	ctx, cancel := context.WithTimeout(ctx, d+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr boundedTail
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var out []byte
	var lineErr error
	for sc.Scan() {
		if onLine != nil && lineErr == nil {
			var taken bool
			if taken, lineErr = onLine(sc.Text()); taken {
				continue
			}
		}
		out = append(append(out, sc.Bytes()...), '\n')
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("%v: %w\n%s%s", argv, err, out, stderr.String())
	}
	return out, lineErr
}

// connections is how many client connections carry c in-flight RPCs:
// one per 16 RPCs, at most 8, as a load balancer or client pool would.
func connections(c int) int { return min(8, max(1, c/16)) }

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
	fmt.Fprintf(progress, "%-10s idle RSS %.1f MiB\n", t.name, mib(base))
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

// boundedTail keeps the last 16 KiB written to it: a failing generator's
// last words.
type boundedTail struct{ b []byte }

func (t *boundedTail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - 16<<10; over > 0 {
		t.b = t.b[over:]
	}
	return len(p), nil
}

func (t *boundedTail) String() string { return string(t.b) }

// greetloadArgs are greetload's flags for one run.
func greetloadArgs(addr string, scenario load.Scenario, c int, warmup, d time.Duration) []string {
	return []string{
		"-addr", addr, "-scenario", string(scenario), "-concurrency", strconv.Itoa(c),
		"-connections", strconv.Itoa(connections(c)), "-warmup", warmup.String(), "-duration", d.String(),
		"-stream-length", strconv.Itoa(streamLength), "-json",
	}
}

// build builds the commands the run needs into dir (the greeter unless
// Config.GreeterBin names one) and notes their paths.
func (b *bench) build(root, dir string) error {
	cmds := []binaries.Command{binaries.BareServer, binaries.GreetLoad}
	if b.cfg.GreeterBin == "" {
		cmds = append(cmds, binaries.Greeter)
	} else {
		b.bins[binaries.Greeter.Name] = b.cfg.GreeterBin
	}
	// ghz also drives the capacity rows.
	needGhz := len(b.cfg.Capacity) > 0
	for _, g := range b.cfg.Generators {
		switch g {
		case GreetLoad:
		case Ghz:
			needGhz = needGhz || len(b.cfg.Scenarios) > 0
		default:
			return fmt.Errorf("bench: unknown generator %q", g)
		}
	}
	if needGhz {
		cmds = append(cmds, binaries.Ghz)
		var err error
		if b.protoset, err = writeProtoset(dir); err != nil {
			return err
		}
	}
	fmt.Fprintln(b.cfg.Progress, "building", len(cmds), "commands ...")
	paths, err := binaries.Build(root, dir, nil, cmds...)
	if err != nil {
		return err
	}
	for i, c := range cmds {
		b.bins[c.Name] = paths[i]
	}
	return nil
}

// pinnedRows measures the idle memory of fresh, pinned servers, then every
// generator, scenario and concurrency level against them.
func (b *bench) pinnedRows(ctx context.Context, rep *report) error {
	targets, stop, err := b.start(ctx, b.pins.server)
	if err != nil {
		return err
	}
	// Memory first, on fresh processes: after load, the Go runtime keeps
	// freed heap for a while and would inflate "idle".
	for _, t := range targets {
		idle, err := idleMemory(ctx, t, b.cfg.IdleConns, b.cfg.Progress)
		if err != nil {
			stop()
			return fmt.Errorf("%s idle memory: %w", t.name, err)
		}
		rep.idle = append(rep.idle, idle)
	}
	for _, g := range b.cfg.Generators {
		for _, scenario := range b.cfg.Scenarios {
			for _, c := range b.cfg.Concurrency {
				r, err := b.row(ctx, targets, g, scenario, c, b.pins.client)
				if err != nil {
					stop()
					return fmt.Errorf("%s %s c=%d: %w", g, scenario, c, err)
				}
				rep.rows = append(rep.rows, r)
				fmt.Fprintln(b.cfg.Progress, r.summary())
			}
		}
	}
	stop()
	return nil
}

// throughputRows measures the streaming throughput of fresh, unpinned
// servers, when Config.Throughput asks for it.
func (b *bench) throughputRows(ctx context.Context, rep *report) error {
	if len(b.cfg.Throughput) == 0 {
		return nil
	}
	// Fresh, unpinned servers: what the whole machine reaches.
	targets, stop, err := b.start(ctx, "")
	if err != nil {
		return err
	}
	defer stop()
	for _, scenario := range []load.Scenario{load.ServerStream, load.Bidi} {
		for _, c := range b.cfg.Throughput {
			r, err := b.row(ctx, targets, GreetLoad, scenario, c, "")
			if err != nil {
				return fmt.Errorf("throughput %s c=%d: %w", scenario, c, err)
			}
			rep.throughput = append(rep.throughput, r)
			fmt.Fprintln(b.cfg.Progress, "throughput", r.summary())
		}
	}
	return nil
}
