package server

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// gate holds unary RPCs inside the server until it is opened, telling the
// test as each one arrives.
type gate struct {
	arrived chan struct{}
	open    chan struct{}
}

func newGate() *gate { return &gate{arrived: make(chan struct{}, 100), open: make(chan struct{})} }

func (g *gate) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	g.arrived <- struct{}{}
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return handler(ctx, req)
}

func (g *gate) waitArrivals(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-g.arrived:
		case <-time.After(promptly):
			t.Fatal("RPC did not reach the server")
		}
	}
}

// TestDrainCompletesInFlight shuts down with unary RPCs and streams in
// flight: health turns NOT_SERVING first, then every one of them completes
// normally, then Shutdown returns.
func TestDrainCompletesInFlight(t *testing.T) {
	g := newGate()
	h := start(t, withOptions(WithUnaryInterceptors(g.unary), WithDrainTimeout(time.Minute)))

	watch, err := h.health.Watch(t.Context(), &healthpb.HealthCheckRequest{Service: ""})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health watch: %v, %v; want SERVING", resp, err)
	}

	// A watcher of a service the server does not know has no NOT_SERVING
	// coming; the drain must end it rather than wait for it.
	unknown, err := h.health.Watch(t.Context(), &healthpb.HealthCheckRequest{Service: "not.a.Service"})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := unknown.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVICE_UNKNOWN {
		t.Fatalf("unknown service watch: %v, %v; want SERVICE_UNKNOWN", resp, err)
	}

	const unary = 8
	results := make(chan error, unary)
	for range unary {
		go func() {
			resp, err := h.greeter.SayHello(context.Background(), &greeterv1.SayHelloRequest{Name: "Ada"})
			if err == nil && resp.GetMessage() != "Hello, Ada!" {
				err = errors.New("wrong greeting " + resp.GetMessage())
			}
			results <- err
		}()
	}
	g.waitArrivals(t, unary)

	// Open streams: chats mid-conversation and a slow server stream.
	const chats = 3
	var chatStreams []grpc.BidiStreamingClient[greeterv1.SayHelloChatRequest, greeterv1.SayHelloChatResponse]
	for range chats {
		c, err := h.greeter.SayHelloChat(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Send(&greeterv1.SayHelloChatRequest{Name: "Grace"}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Recv(); err != nil {
			t.Fatal(err)
		}
		chatStreams = append(chatStreams, c)
	}

	shutdown := make(chan error, 1)
	go func() { shutdown <- h.srv.Shutdown(context.Background()) }()

	// NOT_SERVING comes first, while everything is still in flight.
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health watch during drain: %v, %v; want NOT_SERVING", resp, err)
	}
	if h.srv.Ready() {
		t.Error("Ready() = true while draining")
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v with RPCs in flight", err)
	default:
	}

	// Streams keep working during the drain, and end normally.
	var wg sync.WaitGroup
	for _, c := range chatStreams {
		wg.Go(func() {
			if err := c.Send(&greeterv1.SayHelloChatRequest{Name: "Linus"}); err != nil {
				t.Errorf("chat send during drain: %v", err)
				return
			}
			if resp, err := c.Recv(); err != nil || resp.GetSequence() != 2 {
				t.Errorf("chat recv during drain: %v, %v", resp, err)
			}
			_ = c.CloseSend()
			if _, err := c.Recv(); !errors.Is(err, io.EOF) {
				t.Errorf("chat end: %v, want io.EOF", err)
			}
		})
	}
	wg.Wait()

	close(g.open)
	for range unary {
		if err := <-results; err != nil {
			t.Errorf("in-flight unary RPC failed: %v", err)
		}
	}
	select {
	case err := <-shutdown:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(promptly):
		t.Fatal("Shutdown did not return after every RPC finished")
	}
	if _, err := h.greeter.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "Ada"}); status.Code(err) != codes.Unavailable {
		t.Errorf("RPC after shutdown: %v, want Unavailable", err)
	}
	if _, err := watch.Recv(); err == nil {
		t.Error("health watch still open after the drain")
	}
	if _, err := unknown.Recv(); err == nil {
		t.Error("unknown-service watch still open after the drain")
	}
}

// TestDrainTimeoutForcesStop shows the drain timeout cutting off RPCs that
// would never finish.
func TestDrainTimeoutForcesStop(t *testing.T) {
	g := newGate() // never opened
	h := start(t, withOptions(WithUnaryInterceptors(g.unary), WithDrainTimeout(200*time.Millisecond)))

	result := make(chan error, 1)
	go func() {
		_, err := h.greeter.SayHello(context.Background(), &greeterv1.SayHelloRequest{Name: "Ada"})
		result <- err
	}()
	g.waitArrivals(t, 1)

	start := time.Now()
	if err := h.srv.Shutdown(context.Background()); !errors.Is(err, ErrDrainTimeout) {
		t.Fatalf("Shutdown: %v, want ErrDrainTimeout", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > promptly {
		t.Errorf("Shutdown took %v, want about the 200ms drain timeout", d)
	}
	if err := <-result; status.Code(err) != codes.Unavailable && status.Code(err) != codes.Canceled {
		t.Errorf("cut-off RPC: %v, want Unavailable or Canceled", err)
	}
}

// TestDrainDelay keeps serving through the delay while reporting
// NOT_SERVING, so load balancers can move traffic first.
func TestDrainDelay(t *testing.T) {
	h := start(t, withOptions(WithDrainTimeout(time.Minute), WithDrainDelay(time.Hour)))
	ctx, cancel := context.WithCancel(t.Context())
	shutdown := make(chan error, 1)
	go func() { shutdown <- h.srv.Shutdown(ctx) }()

	watch, err := h.health.Watch(t.Context(), &healthpb.HealthCheckRequest{Service: greeterv1.GreeterService_ServiceDesc.ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health during the delay: %v, %v; want NOT_SERVING", resp, err)
	}
	if _, err := h.greeter.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "Ada"}); err != nil {
		t.Fatalf("RPC during the delay: %v", err)
	}
	cancel() // an impatient caller cuts the delay short
	select {
	case <-shutdown:
	case <-time.After(promptly):
		t.Fatal("Shutdown ignored its context")
	}
}
