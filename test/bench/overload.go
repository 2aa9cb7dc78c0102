package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/test/harness/attack"
	"github.com/acme/greeter/test/harness/binaries"
	"github.com/acme/greeter/test/harness/process"
	"github.com/acme/greeter/test/harness/procstat"
)

// The overload table: the attacks of package attack, the ones
// test/e2e/overload asserts on, at their full counts, each against a fresh
// greeter with its production defaults planned for its default memory
// limit (256 MiB: the capacity rows' flags) and a fresh bare server,
// alternating, Rounds rounds. A well-behaved client calls throughout each
// run; the server's peak RSS is its VmHWM over the run.

// Attack names a row of the overload table.
type Attack string

// The attacks.
const (
	// StuckOne is a burst of stuck readers from one address.
	StuckOne Attack = "stuck-one"
	// StuckMany is a burst of stuck readers from many addresses.
	StuckMany Attack = "stuck-many"
	// IdleConns is a crowd of connections that open no stream.
	IdleConns Attack = "idle"
	// HealthHolders is a crowd holding health calls whose request never
	// comes.
	HealthHolders Attack = "health"
	// HTTPHolders is a crowd of HTTP/1.1 requests whose body never comes.
	HTTPHolders Attack = "http-holders"
	// Crowd is the realistic crowd: streams that never send their request,
	// from many addresses over many connections.
	Crowd Attack = "crowd"
)

// Attacks lists every attack in report order.
var Attacks = []Attack{StuckOne, StuckMany, IdleConns, HealthHolders, HTTPHolders, Crowd}

// The product's goals under every attack, marked in the table.
const (
	overloadRSSGoal   = 200 << 20
	overloadOKGoal    = 0.99
	overloadP99Goal   = 250 * time.Millisecond
	overloadProbeGoal = 1.0
)

// The attacks' full counts and holds.
const (
	// stuckCount is how many one-letter greetings each stuck reader asks
	// for: more than any queue holds.
	stuckCount = 10000
	stuckHold  = 10 * time.Second
	idleHold   = 5 * time.Second
	healthHold = 20 * time.Second
	// httpHold is past the greeter's first-message timeout (10 s) with
	// room for its reaper and net/http to close the connections.
	httpHold  = 25 * time.Second
	crowdHold = 10 * time.Second
	// probeInterval is a Kubernetes probe's period.
	probeInterval = time.Second
)

// overloadRSSCeiling is where a server is killed, as the OOM killer would
// kill its pod: bare grpc-go queues most of a MiB for each stuck reader,
// 5,000 of them more than the benchmark machine should give. It is the
// CPU rows' pod (benchMemoryLimit), 8 times the greeter's.
const overloadRSSCeiling = benchMemoryLimit

// overloadScale scales the attacks' counts and holds, for a quick run: 1
// is the full attack.
type overloadScale float64

func (s overloadScale) n(full int) int {
	return max(1, int(math.Round(float64(full)*float64(s))))
}

func (s overloadScale) d(full time.Duration) time.Duration {
	return max(100*time.Millisecond, time.Duration(float64(full)*float64(s)))
}

// onslaught is an attack under way.
type onslaught struct {
	// finish records, at the end of the hold, what the server still holds
	// of the attack.
	finish func(ctx context.Context, srv *process.Server, r *overloadRun)
	close  func()
}

// attackSpec is one row of the overload table at its scale.
type attackSpec struct {
	attack Attack
	label  string
	// httpPort: the attack is on the HTTP port, and the well-behaved
	// client calls there, Connect.
	httpPort bool
	// probes: health probes on fresh connections are the attack's
	// criterion.
	probes bool
	hold   time.Duration
	// probeEvery is the probes' interval.
	probeEvery time.Duration
	open       func(ctx context.Context, srv *process.Server) (onslaught, error)
}

// overloadSpecs are the attacks of attacks at scale.
func overloadSpecs(attacks []Attack, s overloadScale) ([]attackSpec, error) {
	var specs []attackSpec
	for _, a := range attacks {
		spec := attackSpec{attack: a, probeEvery: s.d(probeInterval)}
		switch a {
		case StuckOne, StuckMany:
			shape := attack.Shape{Addrs: 1, ConnsPerAddr: s.n(50), StreamsPerConn: s.n(100)}
			spec.label = fmt.Sprintf("stuck readers: 1 address × %d connections × %d streams", shape.ConnsPerAddr, shape.StreamsPerConn)
			if a == StuckMany {
				shape = attack.Shape{Addrs: s.n(50), ConnsPerAddr: 1, StreamsPerConn: s.n(100)}
				spec.label = fmt.Sprintf("stuck readers: %d addresses × 1 connection × %d streams", shape.Addrs, shape.StreamsPerConn)
			}
			spec.hold = s.d(stuckHold)
			spec.open = func(ctx context.Context, srv *process.Server) (onslaught, error) {
				return crowdHeld(attack.StuckReaders(ctx, srv.Addr, shape, stuckCount))
			}
		case Crowd:
			shape := attack.Shape{Addrs: s.n(50), ConnsPerAddr: s.n(10), StreamsPerConn: s.n(100)}
			spec.label = fmt.Sprintf("crowd: %d addresses × %d connections × %d streams, HEADERS only", shape.Addrs, shape.ConnsPerAddr, shape.StreamsPerConn)
			spec.hold = s.d(crowdHold)
			spec.open = func(ctx context.Context, srv *process.Server) (onslaught, error) {
				return crowdHeld(attack.HeldStreams(ctx, srv.Addr, shape))
			}
		case IdleConns:
			shape := attack.Shape{Addrs: s.n(50), ConnsPerAddr: s.n(200)}
			spec.label = fmt.Sprintf("idle connections: %d addresses × %d", shape.Addrs, shape.ConnsPerAddr)
			spec.hold, spec.probes = s.d(idleHold), true
			spec.open = func(ctx context.Context, srv *process.Server) (onslaught, error) {
				crowd := attack.IdleConns(ctx, srv.Addr, shape)
				return onslaught{
					finish: func(ctx context.Context, srv *process.Server, r *overloadRun) {
						r.newcomers++
						if newcomer(ctx, srv.Addr) == nil {
							r.newcomerOK++
						}
						for _, c := range crowd.Conns() {
							if !c.Closed() {
								r.held++
							}
						}
						r.of, r.dialsFailed = shape.Conns(), crowd.DialsFailed
					},
					close: crowd.Close,
				}, nil
			}
		case HealthHolders:
			addrs, perMethod := s.n(10), s.n(8)
			spec.label = fmt.Sprintf("health holders: %d addresses × %d `Check` + %d `Watch`, HEADERS only", addrs, perMethod, perMethod)
			spec.hold, spec.probes = s.d(healthHold), true
			spec.open = func(ctx context.Context, srv *process.Server) (onslaught, error) {
				return crowdHeld(attack.HealthHolders(ctx, srv.Addr, addrs, perMethod))
			}
		case HTTPHolders:
			addrs, perAddr := s.n(50), s.n(20)
			spec.label = fmt.Sprintf("HTTP holders: %d addresses × %d HTTP/1.1 `SayHelloToAll`, no body", addrs, perAddr)
			spec.hold, spec.httpPort = s.d(httpHold), true
			spec.open = func(ctx context.Context, srv *process.Server) (onslaught, error) {
				holders := attack.HoldHTTP(ctx, srv.HTTPAddr, addrs, perAddr)
				return onslaught{
					finish: func(_ context.Context, _ *process.Server, r *overloadRun) {
						r.held, r.of, r.dialsFailed = holders.Held(), holders.Sent, holders.DialsFailed
					},
					close: holders.Close,
				}, nil
			}
		default:
			return nil, fmt.Errorf("bench: unknown attack %q", a)
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// crowdHeld is a crowd of streams under way, as an attack opened it (or
// its error): what the server holds is its streams not ended.
func crowdHeld(crowd *attack.Crowd, err error) (onslaught, error) {
	if err != nil {
		return onslaught{}, err
	}
	return onslaught{
		finish: func(_ context.Context, _ *process.Server, r *overloadRun) {
			r.held, r.of, r.dialsFailed, r.opening = crowd.Held(), crowd.Opened, crowd.DialsFailed, crowd.Took
		},
		close: crowd.Close,
	}, nil
}

// newcomer is a new client's first call, from attack.NewcomerIP.
func newcomer(ctx context.Context, addr string) error {
	conn, err := attack.DialFrom(attack.NewcomerIP, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = greeterv1.NewGreeterServiceClient(conn).SayHello(ctx, &greeterv1.SayHelloRequest{Name: "Ada"})
	return err
}

// overloadRun is one server's run of one attack.
type overloadRun struct {
	peakRSS int64
	// killed: past overloadRSSCeiling, killedAfter into the attack.
	killed      bool
	killedAfter time.Duration
	// opening is how long the attack took to open.
	opening time.Duration
	// The well-behaved client's calls.
	ok, calls int
	p99       time.Duration
	// probes 0: none made.
	probesOK, probes      int
	newcomerOK, newcomers int
	held, of, dialsFailed int
}

// overloadRow is one attack: runs[0] the greeter's, runs[1] the bare
// server's, one per round.
type overloadRow struct {
	spec attackSpec
	runs [2][]overloadRun
}

// overloadRows measures the attacks of Config.Overload into rep.
func (b *bench) overloadRows(ctx context.Context, rep *report) error {
	scale := overloadScale(b.cfg.OverloadScale)
	if scale == 0 {
		scale = 1
	}
	specs, err := overloadSpecs(b.cfg.Overload, scale)
	if err != nil {
		return err
	}
	begin := time.Now()
	defer func() {
		fmt.Fprintf(b.cfg.Progress, "overload: %d attacks in %s\n", len(specs), time.Since(begin).Round(time.Second))
	}()
	for _, spec := range specs {
		row := overloadRow{spec: spec}
		for range b.cfg.Rounds {
			for i, name := range []string{binaries.Greeter.Name, binaries.BareServer.Name} {
				r, err := b.overload(ctx, spec, name)
				if err != nil {
					return fmt.Errorf("overload %s, %s: %w", spec.attack, name, err)
				}
				row.runs[i] = append(row.runs[i], r)
				fmt.Fprintf(b.cfg.Progress, "overload %-12s %-10s peak RSS %.1f MiB; well-behaved %d/%d OK, p99 %v; %s\n",
					spec.attack, name, mib(r.peakRSS), r.ok, r.calls, round(r.p99), spec.outcome(r, name == binaries.Greeter.Name))
			}
		}
		rep.overload = append(rep.overload, row)
	}
	return nil
}

// overload runs spec once against a fresh server name.
func (b *bench) overload(ctx context.Context, spec attackSpec, name string) (overloadRun, error) {
	greeter := name == binaries.Greeter.Name
	var args []string
	if greeter {
		args = b.capacityArgs
	}
	if spec.httpPort {
		args = append([]string{"--http-addr", "127.0.0.1:0"}, args...)
	}
	srv, err := process.StartWith(ctx, b.bins[name], args)
	if err != nil {
		return overloadRun{}, err
	}
	defer srv.Stop(30 * time.Second)
	if spec.httpPort && srv.HTTPAddr == "" {
		return overloadRun{}, fmt.Errorf("%s logged no http_addr", name)
	}
	if err := procstat.ResetPeak(srv.Pid()); err != nil {
		return overloadRun{}, err
	}
	guard := guardRSS(srv, overloadRSSCeiling)
	stop := make(chan struct{})
	var calls func() attack.Calls
	if spec.httpPort {
		calls = attack.PoliteConnect(attack.WellBehavedIP, srv.HTTPAddr, stop)
	} else if calls, err = attack.Polite(attack.WellBehavedIP, srv.Addr, stop); err != nil {
		guard.stop()
		return overloadRun{}, err
	}
	// The bare server serves no health service (package bare).
	var probes func() attack.Probes
	if spec.probes && greeter {
		probes = attack.ProbeEvery(srv.Addr, spec.probeEvery, stop)
	}
	abandon := func() {
		close(stop)
		calls()
		if probes != nil {
			probes()
		}
		guard.stop()
	}
	begin := time.Now()
	on, err := spec.open(ctx, srv)
	if err != nil {
		abandon()
		return overloadRun{}, err
	}
	defer on.close()
	select {
	case <-time.After(spec.hold):
	case <-srv.Done(): // killed past the ceiling
	case <-ctx.Done():
		abandon()
		return overloadRun{}, ctx.Err()
	}
	var r overloadRun
	on.finish(ctx, srv, &r)
	var killedAt time.Time
	r.peakRSS, killedAt = guard.stop()
	if r.killed = !killedAt.IsZero(); r.killed {
		r.killedAfter = killedAt.Sub(begin)
	}
	close(stop)
	c := calls()
	r.ok, r.calls, r.p99 = c.OK(), c.N(), c.P99()
	if probes != nil {
		p := probes()
		r.probesOK, r.probes = p.OK(), p.N
	}
	return r, nil
}

// rssGuard kills a server whose RSS passes a ceiling, and keeps its peak.
type rssGuard struct {
	quit, done chan struct{}
	peak       int64
	killedAt   time.Time
}

// guardRSS watches srv's RSS every 50 ms from now.
func guardRSS(srv *process.Server, ceiling int64) *rssGuard {
	g := &rssGuard{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			s, err := procstat.Read(srv.Pid())
			if err != nil {
				return // exited
			}
			g.peak = s.PeakRSS
			if s.RSS > ceiling {
				g.killedAt = time.Now()
				srv.Kill()
				return
			}
			select {
			case <-g.quit:
				if s, err := procstat.Read(srv.Pid()); err == nil {
					g.peak = s.PeakRSS
				}
				return
			case <-tick.C:
			}
		}
	}()
	return g
}

// stop ends the watch, once, and reports the peak RSS and when the server
// was killed, if it was.
func (g *rssGuard) stop() (peak int64, killedAt time.Time) {
	select {
	case <-g.quit:
	default:
		close(g.quit)
	}
	<-g.done
	return g.peak, g.killedAt
}

// total sums a server's runs of a row: counts added, the worst peak RSS
// and p99.
func (r overloadRow) total(i int) overloadRun {
	var t overloadRun
	for _, run := range r.runs[i] {
		t.peakRSS, t.p99 = max(t.peakRSS, run.peakRSS), max(t.p99, run.p99)
		if run.killed && (!t.killed || run.killedAfter < t.killedAfter) {
			t.killed, t.killedAfter = true, run.killedAfter
		}
		t.opening = max(t.opening, run.opening)
		t.ok, t.calls = t.ok+run.ok, t.calls+run.calls
		t.probesOK, t.probes = t.probesOK+run.probesOK, t.probes+run.probes
		t.newcomerOK, t.newcomers = t.newcomerOK+run.newcomerOK, t.newcomers+run.newcomers
		t.held, t.of, t.dialsFailed = t.held+run.held, t.of+run.of, t.dialsFailed+run.dialsFailed
	}
	return t
}

// outcome says what the attack did to a server, beyond its memory and the
// well-behaved client: the attack's own criterion, and what the server
// still held of it at the end.
func (spec attackSpec) outcome(t overloadRun, greeter bool) string {
	if t.killed {
		return fmt.Sprintf("killed past %d MiB, %s into the attack", overloadRSSCeiling>>20, t.killedAfter.Round(100*time.Millisecond))
	}
	var parts []string
	if spec.probes {
		if greeter {
			parts = append(parts, fmt.Sprintf("probes %d/%d%s", t.probesOK, t.probes, missed(1-share(t.probesOK, t.probes), 1-overloadProbeGoal)))
		} else {
			parts = append(parts, "probes — (no health service)")
		}
	}
	if t.newcomers > 0 {
		parts = append(parts, fmt.Sprintf("new client %d/%d OK", t.newcomerOK, t.newcomers))
	}
	switch spec.attack {
	case IdleConns:
		parts = append(parts, fmt.Sprintf("%d of %d connections open", t.held, t.of))
	case HTTPHolders:
		parts = append(parts, fmt.Sprintf("%d of %d held after %s%s", t.held, t.of, spec.hold, missed(float64(t.held), 0)))
	case HealthHolders:
		parts = append(parts, fmt.Sprintf("%d of %d calls held", t.held, t.of))
	default:
		parts = append(parts, fmt.Sprintf("%d of %d streams held, opened in %s", t.held, t.of, t.opening.Round(time.Millisecond)))
	}
	if t.dialsFailed > 0 {
		parts = append(parts, fmt.Sprintf("connections refused: %d", t.dialsFailed))
	}
	return strings.Join(parts, "; ")
}

func share(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

// overloadMarkdown is the report's overload section.
func overloadMarkdown(w io.Writer, rows []overloadRow, rounds int) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "### Overload at the default memory plan (256 MiB)\n\n"+
		"The attacks of test/harness/attack, the ones test/e2e/overload asserts on, at full counts, each held as long as its row says. "+
		"Fresh servers for each run, the greeter with its production defaults and no `--memory-limit` (planned for 256 MiB: the overload limits on) alternating with bare grpc-go (bare connect-go, `bareserver --http-addr`, for the HTTP holders), rounds: %d; "+
		"a server past %d MiB is killed, as the OOM killer would kill its pod. "+
		"**Stuck readers** open `SayHelloStream` calls of %d one-letter greetings at once, on HTTP/2 connections that grant a flow-control window of 0 and never read. "+
		"**Idle connections** complete the HTTP/2 handshake and open no stream, held after they are dialed; then a new client (127.0.0.4) makes its first call. "+
		"**Health holders** hold `grpc.health.v1.Health` calls that send HEADERS only, on one connection from each address. "+
		"**HTTP holders** send the headers of a chunked Connect `SayHelloToAll` on the HTTP port, a connection each, and never its body; held is how many connections the server has not closed at the end. "+
		"**Crowd**: streams that send HEADERS only. "+
		"Crowds dial from 127.0.1.x, one address alone from 127.0.0.2. "+
		"Throughout each run a well-behaved client (127.0.0.1) calls `SayHello` 20 ms after each call returns, each within 5 s (on the HTTP port Connect JSON over HTTP/1.1, a connection a call, 100 ms apart, each within 2 s): OK and p99 are its calls'. "+
		"Where probes are the criterion, a health probe on a fresh connection (127.0.0.3) checks every %s; the bare server has no health service. "+
		"Peak RSS is the server's (VmHWM). "+
		"Goals: peak RSS < %d MiB under every attack; well-behaved calls ≥ %.0f %% OK, p99 < %s; probes 100 %% served; no HTTP holder held after %s. ✗ marks a miss.\n\n",
		rounds, overloadRSSCeiling>>20, stuckCount, rows[0].spec.probeEvery, overloadRSSGoal>>20, 100*overloadOKGoal, overloadP99Goal, httpHold)
	b := &strings.Builder{}
	b.WriteString("| attack | greeter peak RSS | greeter OK | greeter p99 | greeter: the attack | bare peak RSS | bare OK | bare p99 | bare: the attack |\n|---|---:|---:|---:|---|---:|---:|---:|---|\n")
	for _, r := range rows {
		fmt.Fprintf(b, "| %s, %s |", r.spec.label, r.spec.hold)
		for i := range 2 {
			t := r.total(i)
			okShare := share(t.ok, t.calls)
			fmt.Fprintf(b, " %.1f MiB%s | %.2f %% (%d/%d)%s | %v%s | %s |",
				mib(t.peakRSS), missed(float64(t.peakRSS), overloadRSSGoal),
				100*okShare, t.ok, t.calls, missed(1-okShare, 1-overloadOKGoal),
				round(t.p99), missed(float64(t.p99), float64(overloadP99Goal)), r.spec.outcome(t, i == 0))
		}
		b.WriteString("\n")
	}
	b.WriteString("\nOK and the attack's counts over all rounds; p99 and peak RSS the worst of any round.\n\n")
	io.WriteString(w, b.String())
}
