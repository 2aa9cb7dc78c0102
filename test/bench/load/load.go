// Package load drives a greeter server with a fixed number of in-flight
// RPCs for a fixed time and measures throughput and latency. It is the load
// generator behind `make bench` (test/cmd/greetbench) and the reliability
// tests. It is written on grpc-go clients rather than borrowed from ghz
// because it must drive all four RPC shapes with one definition of an
// operation, run bounded inside Go tests, and count every failure by code.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/gen/go/helloworld"
)

// Scenario is one RPC shape under load.
type Scenario string

// The scenarios. For streams, one operation is one message: a greeting
// received (server stream), a name sent (client stream) or a round trip
// (bidi).
const (
	Unary           Scenario = "unary"            // acme.greeter.v1 SayHello; an operation is a call
	UnaryHelloworld Scenario = "unary-helloworld" // the tutorial contract's helloworld.Greeter/SayHello
	ServerStream    Scenario = "server-stream"    // SayHelloStream; a greeting received
	ClientStream    Scenario = "client-stream"    // SayHelloToAll; a name sent
	Bidi            Scenario = "bidi"             // SayHelloChat; a round trip
)

// Scenarios lists every scenario in report order.
var Scenarios = []Scenario{Unary, UnaryHelloworld, ServerStream, ClientStream, Bidi}

// MeasuringLine and MeasuredLine are the lines greetload -json prints as
// the measured window begins and ends (OnMeasure), before its result.
const (
	MeasuringLine = "measuring"
	MeasuredLine  = "measured"
)

// Options configure a run.
type Options struct {
	// Scenario is the RPC shape.
	Scenario Scenario
	// Concurrency is the number of RPCs in flight at once (one per worker).
	Concurrency int
	// Duration bounds the run in time, after Warmup.
	Duration time.Duration
	// Warmup is driven first and not measured: what completes in it is
	// neither counted nor timed, so the result is of steady load, without
	// the ramp-up (connections, goroutines, grown stacks). Default none.
	Warmup time.Duration
	// OnMeasure, if set, is called as the measured part of the run begins
	// (true) and ends (false): a program that measures the server as well
	// (its CPU time, say) reads it then, over the same window.
	OnMeasure func(measuring bool) `json:"-"`
	// MaxOps, if positive, also bounds it in operations handed out, warm-up
	// included (approximately: each worker finishes the operation it
	// started).
	MaxOps int64
	// StreamLength is the number of messages per streaming call; default 1000.
	StreamLength int
}

// Result is what a run measured.
type Result struct {
	Options
	// Ops is how many operations completed successfully.
	Ops int64
	// Errors counts failed RPCs by status code.
	Errors map[codes.Code]int64
	// Elapsed is the measured wall time.
	Elapsed time.Duration
	// P50 and P99 are latency percentiles: per call for unary and client
	// streams, per round trip for bidi, per gap between two greetings for
	// server streams.
	P50, P99 time.Duration
}

// Rate is successful operations per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// Failed is the total number of failed RPCs.
func (r Result) Failed() int64 {
	var n int64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// maxSamples bounds the latency samples one worker keeps; past it, samples
// replace older ones at random positions (reservoir sampling), so
// percentiles stay representative in bounded memory.
const maxSamples = 100_000

// Run drives conns with opts (workers are spread over the connections round
// robin) and returns what it measured. It stops when opts.Warmup and
// opts.Duration have passed, MaxOps operations are done, or ctx is done,
// whichever is first. RPCs cut short by the end of the run are not counted
// as errors.
//
// An operation counts when it completes within the measured window, so the
// operations counted are those the server finished in that window (a
// client stream's names count when its call completes), give or take the
// operations at its two edges.
func Run(ctx context.Context, conns []grpc.ClientConnInterface, opts Options) (Result, error) {
	if opts.Concurrency < 1 || opts.Duration <= 0 || opts.Warmup < 0 || len(conns) == 0 {
		return Result{}, fmt.Errorf("load: need Concurrency ≥ 1, Duration > 0, Warmup ≥ 0 and a connection, got %+v", opts)
	}
	if opts.StreamLength <= 0 {
		opts.StreamLength = 1000
	}
	drive, ok := drivers[opts.Scenario]
	if !ok {
		return Result{}, fmt.Errorf("load: unknown scenario %q", opts.Scenario)
	}
	// The run ends by cancellation, not by a deadline: a deadline travels
	// with each RPC and can expire on the server a moment before it does
	// here, which would be miscounted as a failure.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The window is timed from its own start, so that a late warm-up timer
	// cannot shorten it.
	win := &window{notify: opts.OnMeasure, length: opts.Duration, over: cancel}
	defer win.stop()
	if opts.Warmup == 0 {
		win.begin()
	} else {
		win.beginAfter(opts.Warmup)
	}

	var handedOut atomic.Int64
	workers := make([]*worker, opts.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{
			ctx:     ctx,
			win:     win,
			client:  greeterv1.NewGreeterServiceClient(conns[i%len(conns)]),
			classic: helloworld.NewGreeterClient(conns[i%len(conns)]),
			name:    "load-" + strconv.Itoa(i),
			opts:    opts,
			errs:    map[codes.Code]int64{},
			more: func() bool {
				return ctx.Err() == nil && (opts.MaxOps <= 0 || handedOut.Add(1) <= opts.MaxOps)
			},
			seed: uint64(i)*0x9e3779b97f4a7c15 + 1,
		}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			drive(w)
		}()
	}
	wg.Wait()
	win.stop()
	win.end() // when the run ended early
	res := Result{Options: opts, Errors: map[codes.Code]int64{}, Elapsed: win.elapsed()}
	var samples []time.Duration
	for _, w := range workers {
		res.Ops += w.ops
		for code, n := range w.errs {
			res.Errors[code] += n
		}
		samples = append(samples, w.samples...)
	}
	slices.Sort(samples)
	if n := len(samples); n > 0 {
		res.P50 = samples[n*50/100]
		res.P99 = samples[min(n-1, n*99/100)]
	}
	return res, nil
}

// window is the measured part of a run: it begins after the warm-up and
// lasts length, then ends the run (over).
type window struct {
	measuring atomic.Bool
	notify    func(bool)
	length    time.Duration
	over      func()

	mu       sync.Mutex
	from, to time.Time
	timer    *time.Timer
	stopped  bool
}

func (w *window) beginAfter(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = time.AfterFunc(d, w.begin)
}

func (w *window) begin() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.from.IsZero() || w.stopped {
		return
	}
	if w.notify != nil {
		w.notify(true)
	}
	w.from = time.Now()
	w.measuring.Store(true)
	w.timer = time.AfterFunc(w.length, func() {
		w.end()
		w.over()
	})
}

func (w *window) end() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.from.IsZero() || !w.to.IsZero() {
		return
	}
	w.measuring.Store(false)
	w.to = time.Now()
	if w.notify != nil {
		w.notify(false)
	}
}

// stop cancels the timers: the run is over.
func (w *window) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
}

func (w *window) elapsed() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.to.Sub(w.from)
}

// worker keeps one RPC in flight at a time.
type worker struct {
	ctx     context.Context
	win     *window
	client  greeterv1.GreeterServiceClient
	classic helloworld.GreeterClient
	name    string
	opts    Options
	more    func() bool
	ops     int64
	errs    map[codes.Code]int64
	samples []time.Duration
	seen    int64
	seed    uint64
}

// done counts n operations that just completed, with latency d, if they
// completed within the measured window.
func (w *worker) done(d time.Duration, n int64) {
	if !w.win.measuring.Load() {
		return
	}
	w.ops += n
	w.sample(d)
}

// sample records one latency.
func (w *worker) sample(d time.Duration) {
	w.seen++
	if len(w.samples) < maxSamples {
		w.samples = append(w.samples, d)
		return
	}
	// xorshift: cheap randomness without a shared source.
	w.seed ^= w.seed << 13
	w.seed ^= w.seed >> 7
	w.seed ^= w.seed << 17
	if i := w.seed % uint64(w.seen); i < maxSamples {
		w.samples[i] = d
	}
}

// fail counts err unless the run itself ended it.
func (w *worker) fail(err error) {
	if w.ctx.Err() != nil {
		return
	}
	w.errs[status.Code(err)]++
}

var drivers = map[Scenario]func(*worker){
	Unary:           driveUnary,
	UnaryHelloworld: driveUnaryHelloworld,
	ServerStream:    driveServerStream,
	ClientStream:    driveClientStream,
	Bidi:            driveBidi,
}

func driveUnary(w *worker) {
	req := &greeterv1.SayHelloRequest{Name: w.name}
	for w.more() {
		start := time.Now()
		if _, err := w.client.SayHello(w.ctx, req); err != nil {
			w.fail(err)
			continue
		}
		w.done(time.Since(start), 1)
	}
}

func driveUnaryHelloworld(w *worker) {
	req := &helloworld.HelloRequest{Name: w.name}
	for w.more() {
		start := time.Now()
		if _, err := w.classic.SayHello(w.ctx, req); err != nil {
			w.fail(err)
			continue
		}
		w.done(time.Since(start), 1)
	}
}

func driveServerStream(w *worker) {
	req := &greeterv1.SayHelloStreamRequest{Name: w.name, Count: int32(w.opts.StreamLength)}
	for w.more() {
		stream, err := w.client.SayHelloStream(w.ctx, req)
		if err != nil {
			w.fail(err)
			continue
		}
		last := time.Now()
		var msg greeterv1.SayHelloStreamResponse
		for {
			err = stream.RecvMsg(&msg)
			if err != nil {
				break
			}
			now := time.Now()
			w.done(now.Sub(last), 1)
			last = now
		}
		if !errors.Is(err, io.EOF) {
			w.fail(err)
		}
	}
}

func driveClientStream(w *worker) {
	req := &greeterv1.SayHelloToAllRequest{Name: w.name}
	for w.more() {
		start := time.Now()
		stream, err := w.client.SayHelloToAll(w.ctx)
		if err != nil {
			w.fail(err)
			continue
		}
		sent := 0
		for ; sent < w.opts.StreamLength; sent++ {
			if err = stream.Send(req); err != nil {
				break
			}
		}
		// On a send error the real status comes from CloseAndRecv.
		if _, err = stream.CloseAndRecv(); err != nil {
			w.fail(err)
			continue
		}
		w.done(time.Since(start), int64(sent))
	}
}

func driveBidi(w *worker) {
	req := &greeterv1.SayHelloChatRequest{Name: w.name}
	for w.more() {
		stream, err := w.client.SayHelloChat(w.ctx)
		if err != nil {
			w.fail(err)
			continue
		}
		if err := w.chat(stream, req); err != nil {
			w.fail(err)
		}
	}
}

// errEndedEarly is a stream the server ended with OK before it should have.
var errEndedEarly = status.Error(codes.Unknown, "load: the server ended the stream early")

// chat makes StreamLength round trips on one bidi call, then half-closes and
// expects the server to end the call with OK.
func (w *worker) chat(stream grpc.BidiStreamingClient[greeterv1.SayHelloChatRequest, greeterv1.SayHelloChatResponse], req *greeterv1.SayHelloChatRequest) error {
	var resp greeterv1.SayHelloChatResponse
	for range w.opts.StreamLength {
		start := time.Now()
		if err := stream.Send(req); err != nil {
			// The call has ended; its status is what RecvMsg returns.
			if err = stream.RecvMsg(&resp); errors.Is(err, io.EOF) {
				return errEndedEarly
			}
			return err
		}
		if err := stream.RecvMsg(&resp); err != nil {
			if errors.Is(err, io.EOF) {
				return errEndedEarly
			}
			return err
		}
		w.done(time.Since(start), 1)
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	if err := stream.RecvMsg(&resp); !errors.Is(err, io.EOF) {
		if err == nil {
			return status.Error(codes.Unknown, "load: an answer arrived after the last name")
		}
		return err
	}
	return nil
}

// Dial opens n plaintext client connections to target (a gRPC target:
// HOST:PORT, dns:///HOST:PORT ...), the way a client pool or a load
// balancer spreads RPCs; closeAll closes them.
func Dial(target string, n int) (conns []grpc.ClientConnInterface, closeAll func(), err error) {
	var raw []*grpc.ClientConn
	closeAll = func() {
		for _, cc := range raw {
			cc.Close()
		}
	}
	for range n {
		cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		raw = append(raw, cc)
		conns = append(conns, cc)
	}
	return conns, closeAll, nil
}
