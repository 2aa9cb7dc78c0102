package scaling_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/test/e2e/scaling"
	"github.com/acme/greeter/test/harness/binaries"
	"github.com/acme/greeter/test/harness/process"
)

// Binaries built once for the package's tests.
var greeterBin, greetctlBin string

func TestMain(m *testing.M) {
	os.Exit(binaries.Main(m, func(paths []string) error {
		greeterBin, greetctlBin = paths[0], paths[1]
		return nil
	}, binaries.Greeter, binaries.Greetctl))
}

// startReplicas starts n greeter processes on loopback with their admin
// servers, stopped (SIGTERM, then SIGKILL) when the test ends.
func startReplicas(t *testing.T, n int, args ...string) []*process.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("starts greeter processes")
	}
	var out []*process.Server
	for range n {
		s, err := process.Start(context.Background(), greeterBin, append([]string{"--metrics-addr", "127.0.0.1:0"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			select {
			case <-s.Done():
			default:
				_ = s.Stop(15 * time.Second)
			}
		})
		if s.MetricsAddr == "" {
			t.Fatalf("replica %s logged no metrics address:\n%s", s.Addr, s.Log())
		}
		out = append(out, s)
	}
	return out
}

func served(t *testing.T, replicas []*process.Server) []int {
	t.Helper()
	counts := make([]int, len(replicas))
	for i, s := range replicas {
		n, err := scaling.SayHelloOK(context.Background(), s.MetricsAddr)
		if err != nil {
			t.Fatalf("metrics of %s: %v", s.Addr, err)
		}
		counts[i] = n
	}
	return counts
}

// TestGreetctlSpreadsCallsOverReplicas runs one `greetctl --addr a,b,c
// hello` per call and reads from each replica's /metrics how many it
// served. Each invocation is a new client making one RPC: round_robin sends
// it to whichever replica's connection is READY first, so the share of a
// replica is a race won about a third of the time, not a strict rotation
// (that is what a long-lived client gets: TestRoundRobinSkipsDrainingReplica).
// Enough invocations make the shares fair; each replica must get at least
// half its fair share.
func TestGreetctlSpreadsCallsOverReplicas(t *testing.T) {
	const calls = 150
	const minShare = calls / 3 / 2
	replicas := startReplicas(t, 3)
	addrs := []string{replicas[0].Addr, replicas[1].Addr, replicas[2].Addr}
	list := strings.Join(addrs, ",")
	config := t.TempDir() // no user config file

	start := time.Now()
	for i := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		name := fmt.Sprintf("Ada%d", i)
		cmd := exec.CommandContext(ctx, greetctlBin, "--addr", list, "--timeout", "5s", "hello", name)
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+config)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("greetctl --addr %s hello %s: %v\n%s", list, name, err, out)
		}
		if !strings.Contains(string(out), name) {
			t.Fatalf("greetctl hello %s printed %q", name, out)
		}
	}
	elapsed := time.Since(start)
	counts := served(t, replicas)
	t.Logf("%d greetctl invocations in %s; calls per replica %v (fair share %d)", calls, elapsed.Round(time.Millisecond), counts, calls/3)
	total := 0
	for i, n := range counts {
		total += n
		if n < minShare {
			t.Errorf("replica %d (%s) served %d of %d calls, want at least %d: greetctl did not balance", i, addrs[i], n, calls, minShare)
		}
	}
	if total != calls {
		t.Errorf("replicas served %d calls in all, want %d", total, calls)
	}
}

// TestRoundRobinSkipsDrainingReplica runs a paced stream of SayHello calls
// from several goroutines through one round_robin client with health
// checking over three replicas, and sends one replica SIGTERM midway. The
// replica reports NOT_SERVING at once and keeps accepting RPCs for its
// --drain-delay, then stops. No call may fail, the drained replica must exit
// 0, the other two must carry the calls after it, and the client must stop
// sending to the draining replica as soon as it says NOT_SERVING.
func TestRoundRobinSkipsDrainingReplica(t *testing.T) {
	const (
		totalCalls   = 3000
		sigtermAfter = 900 // calls
		rate         = 300 // calls per second, all workers together
		workers      = 8
		maxRun       = 20 * time.Second
		drainDelay   = time.Second
	)
	replicas := startReplicas(t, 3, "--drain-delay", drainDelay.String(), "--drain-timeout", "10s")
	addrs := []string{replicas[0].Addr, replicas[1].Addr, replicas[2].Addr}
	drained := replicas[2]

	conn, _, err := scaling.NewRoundRobinClient(addrs, greeterv1.GreeterService_ServiceDesc.ServiceName)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := greeterv1.NewGreeterServiceClient(conn)

	ctx, cancel := context.WithTimeout(context.Background(), maxRun)
	defer cancel()

	type result struct {
		addr string
		at   time.Time
		err  error
	}
	var (
		mu      sync.Mutex
		results []result
		done    atomic.Int64
	)
	call := func() result {
		var p peer.Peer
		callCtx, cancelCall := context.WithTimeout(ctx, 5*time.Second)
		defer cancelCall()
		_, err := client.SayHello(callCtx, &greeterv1.SayHelloRequest{Name: "Ada"}, grpc.Peer(&p))
		r := result{at: time.Now(), err: err}
		if p.Addr != nil {
			r.addr = p.Addr.String()
		}
		return r
	}

	// Pace the calls: a token per call, at most totalCalls, until maxRun.
	tokens := make(chan struct{})
	go func() {
		defer close(tokens)
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		for range totalCalls {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range tokens {
				r := call()
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
				done.Add(1)
			}
		})
	}

	// Midway, drain one replica as the kubelet would.
	var sigtermAt, exitedAt time.Time
	var stopErr error
	drainDone := make(chan struct{})
	go func() {
		defer close(drainDone)
		poll := time.NewTicker(5 * time.Millisecond)
		defer poll.Stop()
		for done.Load() < sigtermAfter {
			select {
			case <-ctx.Done():
				stopErr = fmt.Errorf("only %d calls before the deadline", done.Load())
				return
			case <-poll.C:
			}
		}
		sigtermAt = time.Now()
		stopErr = drained.Stop(15 * time.Second)
		exitedAt = time.Now()
	}()
	wg.Wait()
	elapsed := time.Since(start)
	<-drainDone

	if stopErr != nil {
		t.Fatalf("drained replica %s: %v (want exit status 0)\n%s", drained.Addr, stopErr, drained.Log())
	}
	var failed []result
	perReplica := map[string]int{}
	afterSigterm := map[string]int{}
	afterExit := map[string]int{}
	for _, r := range results {
		if r.err != nil {
			failed = append(failed, r)
			continue
		}
		perReplica[r.addr]++
		if r.at.After(sigtermAt) {
			afterSigterm[r.addr]++
		}
		if r.at.After(exitedAt) {
			afterExit[r.addr]++
		}
	}
	t.Logf("%d calls (%d workers, paced at %d/s) in %s: %d failed", len(results), workers, rate, elapsed.Round(time.Millisecond), len(failed))
	for i, a := range addrs {
		t.Logf("replica %d %s: %d calls in all, %d after SIGTERM to replica 2, %d after it exited", i, a, perReplica[a], afterSigterm[a], afterExit[a])
	}
	t.Logf("replica 2 drained in %s (drain-delay %s) and exited 0", exitedAt.Sub(sigtermAt).Round(time.Millisecond), drainDelay)

	if len(results) != totalCalls {
		// A slow machine may not reach the count within maxRun; the
		// assertions below still require the run to have covered the drain.
		t.Logf("made %d of %d calls within %s", len(results), totalCalls, maxRun)
	}
	for i, r := range failed {
		if i == 5 {
			break
		}
		t.Errorf("call failed at %s after start: %v", r.at.Sub(start).Round(time.Millisecond), r.err)
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d calls failed across the drain, want 0", len(failed), len(results))
	}
	for _, a := range addrs[:2] {
		if afterExit[a] == 0 {
			t.Errorf("replica %s served no call after the drained replica exited", a)
		}
	}
	if n := afterExit[drained.Addr]; n != 0 {
		t.Errorf("the drained replica answered %d calls after it exited", n)
	}
	// Without health checking the client would keep a third of the calls
	// (about rate/3 per second of drain-delay) on the draining replica.
	if n, limit := afterSigterm[drained.Addr], rate/3/5; n > limit {
		t.Errorf("the draining replica still got %d calls after SIGTERM (more than %d): the client did not skip it when it reported NOT_SERVING", n, limit)
	}
	if afterExit[addrs[0]]+afterExit[addrs[1]] < totalCalls/4 {
		t.Errorf("only %d calls ran after the drain: the run did not cover it", afterExit[addrs[0]]+afterExit[addrs[1]])
	}

	// The servers' own counters agree with what the client saw.
	for i, s := range replicas[:2] {
		want := perReplica[s.Addr]
		deadline := time.Now().Add(5 * time.Second)
		poll := time.NewTicker(20 * time.Millisecond)
		for {
			got, err := scaling.SayHelloOK(context.Background(), s.MetricsAddr)
			if err != nil {
				t.Fatal(err)
			}
			if got == want {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("replica %d /metrics counts %d SayHello OK, the client saw %d", i, got, want)
				break
			}
			<-poll.C
		}
		poll.Stop()
	}
}

func TestSayHelloOKCountsCalls(t *testing.T) {
	replicas := startReplicas(t, 1)
	n, err := scaling.SayHelloOK(context.Background(), replicas[0].MetricsAddr)
	if err != nil || n != 0 {
		t.Fatalf("fresh server: %d, %v", n, err)
	}
	conn, _, err := scaling.NewRoundRobinClient([]string{replicas[0].Addr}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for range 3 {
		if _, err := greeterv1.NewGreeterServiceClient(conn).SayHello(context.Background(), &greeterv1.SayHelloRequest{Name: "Ada"}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := scaling.SayHelloOK(context.Background(), replicas[0].MetricsAddr); err != nil || n != 3 {
		t.Fatalf("after 3 calls: %d, %v", n, err)
	}
}

// TestMaxConnectionAgeFindsNewReplicas scales a deployment from two
// replicas to three under a running client that resolves like dns:/// on a
// headless Service (scaling.Zone): the new replica is in the answer, but
// the client asks again only when it loses a connection. With the servers'
// --max-connection-age it does within that age and the new replica gets its
// share; with the default age (30m) it never does during the test.
func TestMaxConnectionAgeFindsNewReplicas(t *testing.T) {
	t.Run("max-connection-age=2s", func(t *testing.T) {
		r := scaleUp(t, 8*time.Second, "--max-connection-age", "2s", "--max-connection-age-grace", "1s")
		if r.failed > 0 {
			t.Errorf("%d calls failed while connections aged, want 0", r.failed)
		}
		if r.found < 0 {
			t.Fatalf("the new replica served no call within %s of the scale-up (zone resolved %d times)", r.window, r.resolves)
		}
		if r.found > 4*time.Second {
			t.Errorf("the new replica got its first call %s after the scale-up, want within about the connection age (2s + 10%% jitter)", r.found)
		}
		if r.afterFound[2] < r.totalAfterFound/3/2 {
			t.Errorf("once found, the new replica served %d of %d calls, want at least half a fair share", r.afterFound[2], r.totalAfterFound)
		}
	})
	t.Run("default age (control)", func(t *testing.T) {
		r := scaleUp(t, 3*time.Second)
		if r.failed > 0 {
			t.Errorf("%d calls failed, want 0", r.failed)
		}
		if r.found >= 0 {
			t.Errorf("the new replica was found %s after the scale-up without connection ageing: the client re-resolved (%d resolutions); the control no longer shows why --max-connection-age is needed", r.found, r.resolves)
		}
	})
}

type scaleUpResult struct {
	window          time.Duration
	failed          int
	found           time.Duration // first call on the new replica after scale-up; -1 never
	afterFound      [3]int        // calls per replica once it was found
	totalAfterFound int
	resolves        int64
}

// scaleUp starts three replicas with args, puts two in a Zone, runs paced
// calls (200/s) for a second, adds the third to the zone and runs calls for
// at most window more: until the new replica has served calls for 600
// calls, if it is found.
func scaleUp(t *testing.T, window time.Duration, args ...string) scaleUpResult {
	const rate = 200
	replicas := startReplicas(t, 3, args...)
	addrs := []string{replicas[0].Addr, replicas[1].Addr, replicas[2].Addr}
	zone := scaling.NewZone(addrs[0], addrs[1])
	conn, err := grpc.NewClient(scaling.ZoneScheme+":///greeter",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(zone.Builder()),
		grpc.WithDefaultServiceConfig(scaling.ServiceConfig("")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := greeterv1.NewGreeterServiceClient(conn)
	index := map[string]int{addrs[0]: 0, addrs[1]: 1, addrs[2]: 2}

	res := scaleUpResult{window: window, found: -1}
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	call := func() (int, error) {
		<-tick.C
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var p peer.Peer
		if _, err := client.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "Ada"}, grpc.Peer(&p)); err != nil {
			return -1, err
		}
		return index[p.Addr.String()], nil
	}

	var before [3]int
	for range rate { // one second on two replicas
		i, err := call()
		if err != nil {
			res.failed++
			t.Logf("call failed: %v", err)
			continue
		}
		before[i]++
	}
	if before[2] != 0 {
		t.Fatalf("replica 2 served %d calls before it was in the zone", before[2])
	}
	zone.Set(addrs...)
	scaled := time.Now()
	var after [3]int
	for n := int64(0); time.Since(scaled) < window && n < window.Milliseconds()*rate/1000; n++ {
		i, err := call()
		if err != nil {
			res.failed++
			t.Logf("call failed: %v", err)
			continue
		}
		after[i]++
		if i == 2 && res.found < 0 {
			res.found = time.Since(scaled)
		}
		if res.found >= 0 {
			res.afterFound[i]++
			res.totalAfterFound++
			if res.totalAfterFound >= 600 {
				break
			}
		}
	}
	res.resolves = zone.Resolves()
	found := "never"
	if res.found >= 0 {
		found = res.found.Round(time.Millisecond).String() + " after the scale-up"
	}
	t.Logf("before scale-up: calls per replica %v; after: %v in %s; new replica first served: %s; once found: %v; zone resolved %d times; %d failed",
		before, after, time.Since(scaled).Round(time.Millisecond), found, res.afterFound, res.resolves, res.failed)
	return res
}
