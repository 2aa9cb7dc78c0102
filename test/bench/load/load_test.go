package load_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/test/bench/bare"
	"github.com/acme/greeter/test/bench/load"
)

// serve starts a grpc-go server on loopback with opts and what register
// registers, stopped when the test ends, and returns a client of it.
func serve(t *testing.T, register func(*grpc.Server), opts ...grpc.ServerOption) grpc.ClientConnInterface {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	register(s)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// TestScenarios runs every scenario briefly against the bare server: the
// benchmark code keeps compiling and working, and its counts add up.
func TestScenarios(t *testing.T) {
	conn := serve(t, bare.Register)
	for _, scenario := range load.Scenarios {
		t.Run(string(scenario), func(t *testing.T) {
			res, err := load.Run(context.Background(), []grpc.ClientConnInterface{conn},
				load.Options{Scenario: scenario, Concurrency: 4, Duration: 200 * time.Millisecond, StreamLength: 50})
			if err != nil {
				t.Fatal(err)
			}
			if res.Ops == 0 || res.Failed() != 0 {
				t.Fatalf("ops %d, failures %v", res.Ops, res.Errors)
			}
			if res.P50 <= 0 || res.P99 < res.P50 || res.Rate() <= 0 {
				t.Errorf("p50 %v, p99 %v, rate %v", res.P50, res.P99, res.Rate())
			}
		})
	}
}

func TestMaxOpsBoundsTheRun(t *testing.T) {
	conn := serve(t, bare.Register)
	res, err := load.Run(context.Background(), []grpc.ClientConnInterface{conn},
		load.Options{Scenario: load.Unary, Concurrency: 4, Duration: time.Minute, MaxOps: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 100 {
		t.Errorf("ops = %d, want exactly 100", res.Ops)
	}
	if res.Elapsed > 30*time.Second {
		t.Errorf("a run of 100 calls took %v: MaxOps did not stop it", res.Elapsed)
	}
}

// failing answers every RPC with UNAVAILABLE.
type failing struct {
	greeterv1.UnimplementedGreeterServiceServer
}

func (failing) SayHello(context.Context, *greeterv1.SayHelloRequest) (*greeterv1.SayHelloResponse, error) {
	return nil, status.Error(codes.Unavailable, "down")
}

func TestFailuresAreCountedByCode(t *testing.T) {
	conn := serve(t, func(s *grpc.Server) { greeterv1.RegisterGreeterServiceServer(s, failing{}) })
	for _, scenario := range load.Scenarios {
		t.Run(string(scenario), func(t *testing.T) {
			res, err := load.Run(context.Background(), []grpc.ClientConnInterface{conn},
				load.Options{Scenario: scenario, Concurrency: 2, Duration: time.Minute, MaxOps: 10, StreamLength: 5})
			if err != nil {
				t.Fatal(err)
			}
			want := codes.Unavailable
			if scenario != load.Unary {
				want = codes.Unimplemented
			}
			if res.Ops != 0 || res.Errors[want] == 0 || res.Failed() != res.Errors[want] {
				t.Errorf("ops %d, errors %v; want only %v failures", res.Ops, res.Errors, want)
			}
		})
	}
}

func TestBadOptions(t *testing.T) {
	conn := serve(t, bare.Register)
	for _, opts := range []load.Options{
		{Scenario: load.Unary, Concurrency: 0, Duration: time.Second},
		{Scenario: load.Unary, Concurrency: 1},
		{Scenario: "nope", Concurrency: 1, Duration: time.Second},
	} {
		if _, err := load.Run(context.Background(), []grpc.ClientConnInterface{conn}, opts); err == nil {
			t.Errorf("%+v: want an error", opts)
		}
	}
}

// TestWarmupIsNotMeasured: what completes during the warm-up is not
// counted, and OnMeasure frames the measured window.
func TestWarmupIsNotMeasured(t *testing.T) {
	var served atomic.Int64
	cc := serve(t, bare.Register, grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		served.Add(1)
		return h(ctx, req)
	}))

	var marks []bool
	var servedAtStart, servedAtEnd int64
	res, err := load.Run(context.Background(), []grpc.ClientConnInterface{cc}, load.Options{
		Scenario: load.Unary, Concurrency: 2, Warmup: 400 * time.Millisecond, Duration: 200 * time.Millisecond,
		OnMeasure: func(measuring bool) {
			marks = append(marks, measuring)
			if measuring {
				servedAtStart = served.Load()
			} else {
				servedAtEnd = served.Load()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(marks) != 2 || !marks[0] || marks[1] {
		t.Fatalf("OnMeasure calls %v, want [true false]", marks)
	}
	if res.Elapsed < 200*time.Millisecond || res.Elapsed > 2*time.Second {
		t.Errorf("elapsed %v, want the 200ms window", res.Elapsed)
	}
	// Calls in the window: those the server served between the marks, give
	// or take the ones in flight at each edge.
	inWindow := servedAtEnd - servedAtStart
	if res.Ops == 0 || res.Ops < inWindow-4 || res.Ops > inWindow+4 || servedAtStart == 0 {
		t.Errorf("counted %d calls; the server served %d in the window and %d before it", res.Ops, inWindow, servedAtStart)
	}
}
