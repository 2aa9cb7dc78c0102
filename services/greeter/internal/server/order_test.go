package server

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/acme/greeter/services/greeter/internal/validate"
)

func panicUnary(context.Context, any, *grpc.UnaryServerInfo, grpc.UnaryHandler) (any, error) {
	panic("boom")
}

func panicStream(any, grpc.ServerStream, *grpc.StreamServerInfo, grpc.StreamHandler) error {
	panic("stream boom")
}

// TestInterceptorOrder pins the chain: recovery outside metrics and the
// access log, which are outside validation. A handler panic therefore
// becomes INTERNAL, is logged with its stack, counted as a panic, and still
// shows up as INTERNAL in the access log and the RPC metrics; a validation
// failure shows up there as INVALID_ARGUMENT.
func TestInterceptorOrder(t *testing.T) {
	h := start(t, withOptions(WithUnaryInterceptors(panicUnary), WithStreamInterceptors(panicStream)))

	_, err := h.greeter.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "Ada"})
	if st := status.Convert(err); st.Code() != codes.Internal || strings.Contains(st.Message(), "boom") {
		t.Fatalf("panic gave %v; want Internal without the panic value", err)
	}
	stream, err := h.greeter.SayHelloStream(t.Context(), &greeterv1.SayHelloStreamRequest{Name: "Ada", Count: 1})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Internal {
		t.Fatalf("stream panic gave %v; want Internal", err)
	}
	// Validation runs before the (panicking) handler.
	_, err = h.greeter.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: " "})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("invalid request gave %v; want InvalidArgument", err)
	}

	if got := metricValue(t, h.metrics, "grpc_req_panics_recovered_total", nil); got != 2 {
		t.Errorf("panics counted: %v, want 2", got)
	}
	for _, tt := range []struct{ method, code string }{
		{"SayHello", "Internal"}, {"SayHelloStream", "Internal"}, {"SayHello", "InvalidArgument"},
	} {
		if got := metricValue(t, h.metrics, "grpc_server_handled_total", map[string]string{
			"grpc_method": tt.method, "grpc_code": tt.code,
		}); got != 1 {
			t.Errorf("grpc_server_handled_total{%s,%s} = %v, want 1", tt.method, tt.code, got)
		}
		if got := h.logs.lines("finished call", "grpc.method="+tt.method+" ", "grpc.code="+tt.code); len(got) != 1 {
			t.Errorf("access lines for %s %s: %q, want one", tt.method, tt.code, got)
		}
	}
	panics := h.logs.lines("recovered from panic")
	if len(panics) != 2 {
		t.Fatalf("panic log lines: %q, want 2", panics)
	}
	if !strings.Contains(panics[0], "panic=boom") || !strings.Contains(panics[0], "panicUnary") {
		t.Errorf("panic line lacks the value or the stack: %s", panics[0])
	}
}

func TestAccessLog(t *testing.T) {
	t.Run("info", func(t *testing.T) {
		h := start(t, withLogLevel(slog.LevelInfo))
		if _, err := h.greeter.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "Ada"}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.health.Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
		lines := h.logs.lines("finished call")
		if len(lines) != 1 {
			t.Fatalf("access lines %q, want exactly one (health checks are debug)", lines)
		}
		for _, field := range []string{"grpc.service=acme.greeter.v1.GreeterService", "grpc.method=SayHello", "grpc.code=OK", "grpc.duration=", "peer.address="} {
			if !strings.Contains(lines[0], field) {
				t.Errorf("access line lacks %s: %s", field, lines[0])
			}
		}
	})
	t.Run("debug", func(t *testing.T) {
		h := start(t, withLogLevel(slog.LevelDebug))
		if _, err := h.health.Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
		if got := h.logs.lines("level=DEBUG", "finished call", "grpc.health.v1.Health"); len(got) != 1 {
			t.Fatalf("health access lines at debug: %q, want one", got)
		}
	})
	t.Run("warn", func(t *testing.T) {
		h := start(t, withLogLevel(slog.LevelWarn))
		if _, err := h.greeter.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "Ada"}); err != nil {
			t.Fatal(err)
		}
		_, _ = h.greeter.SayHello(t.Context(), &greeterv1.SayHelloRequest{})
		if got := h.logs.String(); got != "" {
			t.Fatalf("logged below warn: %q", got)
		}
	})
}

// TestUndecodableStopsAtValidation: on a server built by New, a unary
// request that does not decode is INVALID_ARGUMENT, never reaches the
// innermost interceptors, and is counted and logged as the client error it
// is.
func TestUndecodableStopsAtValidation(t *testing.T) {
	reached := false
	inner := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		reached = true
		return handler(ctx, req)
	}
	h := start(t, withOptions(WithUnaryInterceptors(inner)))
	_, err := callRaw(t.Context(), h.conn, "/acme.greeter.v1.GreeterService/SayHello", wire(nil).str(1, "Ad\xffa"))
	wantStatus(t, err, codes.InvalidArgument, "name", validate.ReasonInvalidUTF8)
	if reached {
		t.Error("an undecodable request got past validation")
	}
	if got := metricValue(t, h.metrics, "grpc_server_handled_total", map[string]string{
		"grpc_method": "SayHello", "grpc_code": "InvalidArgument",
	}); got != 1 {
		t.Errorf("grpc_server_handled_total{SayHello,InvalidArgument} = %v, want 1", got)
	}
	if got := h.logs.lines("finished call", "grpc.method=SayHello ", "grpc.code=InvalidArgument"); len(got) != 1 {
		t.Errorf("access lines %q, want one", got)
	}
}
