package server

import (
	"testing"
	"time"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// TestRateLimit checks the per-client limit in the real chain: the burst
// passes, the next call is RESOURCE_EXHAUSTED with RetryInfo, before
// validation sees it (a bad request over the limit is still
// RESOURCE_EXHAUSTED), counted by metrics, and health checks are exempt.
func TestRateLimit(t *testing.T) {
	// 0.5/s: the bucket cannot refill during the test.
	h := start(t, withOptions(WithRateLimit(0.5), WithRateLimitBurst(3)))
	for i := range 3 {
		if _, err := h.greeter.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "Ada"}); err != nil {
			t.Fatalf("call %d of the burst: %v", i+1, err)
		}
	}
	for _, req := range []*greeterv1.SayHelloRequest{{Name: "Ada"}, {Name: ""}} {
		_, err := h.greeter.SayHello(t.Context(), req)
		st := status.Convert(err)
		if st.Code() != codes.ResourceExhausted {
			t.Fatalf("over the limit (%q): %v, want ResourceExhausted", req.GetName(), err)
		}
		var delay time.Duration
		for _, d := range st.Details() {
			if r, ok := d.(*errdetails.RetryInfo); ok {
				delay = r.GetRetryDelay().AsDuration()
			}
		}
		if delay <= 0 || delay > 2*time.Second {
			t.Fatalf("RetryInfo delay %v, want (0, 2s] at 0.5/s", delay)
		}
	}
	stream, err := h.greeter.SayHelloStream(t.Context(), &greeterv1.SayHelloStreamRequest{Name: "Ada", Count: 1})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("stream over the limit: %v, want ResourceExhausted", err)
	}
	for range 10 {
		if _, err := h.health.Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("health check limited: %v", err)
		}
	}
	got := metricValue(t, h.metrics, "grpc_server_handled_total", map[string]string{"grpc_method": "SayHello", "grpc_code": "ResourceExhausted"})
	if got != 2 {
		t.Errorf("grpc_server_handled_total{SayHello,ResourceExhausted} = %v, want 2", got)
	}
}

// TestRateLimitOff: without WithRateLimit (or with 0) nothing is limited.
func TestRateLimitOff(t *testing.T) {
	h := start(t, withOptions(WithRateLimit(0)))
	for range 50 {
		if _, err := h.greeter.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "Ada"}); err != nil {
			t.Fatal(err)
		}
	}
}
