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

// Options configure a run.
type Options struct {
	// Scenario is the RPC shape.
	Scenario Scenario
	// Concurrency is the number of RPCs in flight at once (one per worker).
	Concurrency int
	// Duration bounds the run in time.
	Duration time.Duration
	// MaxOps, if positive, also bounds it in operations (approximately: each
	// worker finishes the operation it started).
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
// robin) and returns what it measured. It stops when opts.Duration has
// passed, MaxOps operations are done, or ctx is done, whichever is first.
// RPCs cut short by the end of the run are not counted as errors.
func Run(ctx context.Context, conns []grpc.ClientConnInterface, opts Options) (Result, error) {
	if opts.Concurrency < 1 || opts.Duration <= 0 || len(conns) == 0 {
		return Result{}, fmt.Errorf("load: need Concurrency ≥ 1, Duration > 0 and a connection, got %+v", opts)
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
	stop := time.AfterFunc(opts.Duration, cancel)
	defer stop.Stop()

	var handedOut atomic.Int64
	workers := make([]*worker, opts.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		w := &worker{
			ctx:     ctx,
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
	res := Result{Options: opts, Errors: map[codes.Code]int64{}, Elapsed: time.Since(start)}
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

// worker keeps one RPC in flight at a time.
type worker struct {
	ctx     context.Context
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
		w.sample(time.Since(start))
		w.ops++
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
		w.sample(time.Since(start))
		w.ops++
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
			w.sample(now.Sub(last))
			last = now
			w.ops++
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
		w.sample(time.Since(start))
		w.ops += int64(sent)
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
		w.sample(time.Since(start))
		w.ops++
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

// Dial opens n plaintext client connections to addr, the way a client pool
// or a load balancer spreads RPCs; closeAll closes them.
func Dial(addr string, n int) (conns []grpc.ClientConnInterface, closeAll func(), err error) {
	var raw []*grpc.ClientConn
	closeAll = func() {
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
