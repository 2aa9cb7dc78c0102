package server

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/acme/greeter/services/greeter/internal/admission"
)

// TestFirstMessageTimeout opens calls whose request never arrives (HTTP/2
// by hand: HEADERS, then a body that never writes): the server ends each
// after WithFirstMessageTimeout with CANCELLED (grpc-go's answer to the
// cancelled read, before any interceptor sees it), and counts them reaped.
func TestFirstMessageTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	h := start(t, withOptions(WithFirstMessageTimeout(timeout)))
	client := h2cClient(h)
	for _, tc := range []struct {
		method string
		code   codes.Code
	}{
		{"/acme.greeter.v1.GreeterService/SayHelloStream", codes.Canceled},
		{"/acme.greeter.v1.GreeterService/SayHelloChat", codes.Canceled},
		{"/acme.greeter.v1.GreeterService/SayHello", codes.Canceled},
	} {
		t.Run(tc.method, func(t *testing.T) {
			body, never := io.Pipe()
			defer never.Close()
			ctx, cancel := context.WithTimeout(t.Context(), timeout+5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://bufconn"+tc.method, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/grpc")
			req.Header.Set("TE", "trailers")
			begin := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				t.Fatalf("not ended by the server within %s: %v", timeout+5*time.Second, err)
			}
			resp.Body.Close()
			took := time.Since(begin)
			got := resp.Trailer.Get("Grpc-Status")
			if got == "" {
				got = resp.Header.Get("Grpc-Status")
			}
			t.Logf("%s ended after %s: grpc-status %s %q", tc.method, took, got, resp.Trailer.Get("Grpc-Message"))
			if want := strconvCode(tc.code); got != want {
				t.Errorf("grpc-status %s, want %s (%s)", got, want, tc.code)
			}
			if took < timeout || took > timeout+2*time.Second {
				t.Errorf("ended after %s, want soon after %s", took, timeout)
			}
		})
	}
	if got := testutil.ToFloat64(h.metrics.Overload.StreamsReaped.WithLabelValues(admission.LimitFirstMessageTimeout)); got != 3 {
		t.Errorf("greeter_streams_reaped_total{limit=first-message-timeout} = %v, want 3", got)
	}
	// No handler ran for them: the reaper releases their charge.
	waitReleased(t, h, 0, time.Second)
}

// waitReleased waits at most limit for the RPCs admission counts in flight
// to be want.
func waitReleased(t *testing.T, h *harness, want int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got := h.srv.admission.InFlight()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d RPCs in flight after %s, want %d", got, limit, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestChargesReleased: every RPC that ends gives its charge back at once —
// unary, streams, a rejected request — and a method the server does not
// have is answered UNIMPLEMENTED without being charged, so a newer client
// calling it is never refused for it.
func TestChargesReleased(t *testing.T) {
	h := start(t)
	ctx := t.Context()
	client := greeterv1.NewGreeterServiceClient(h.conn)
	for range 10 {
		if _, err := client.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "Ada"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.SayHello(ctx, &greeterv1.SayHelloRequest{Name: " "}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("blank name: %v, want INVALID_ARGUMENT", err)
	}
	stream, err := client.SayHelloStream(ctx, &greeterv1.SayHelloStreamRequest{Name: "Ada", Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := stream.Recv(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	chat, err := client.SayHelloChat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := chat.Send(&greeterv1.SayHelloChatRequest{Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := chat.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.Recv(); err != io.EOF {
		t.Fatalf("chat after CloseSend: %v, want EOF", err)
	}
	// Released when each handler returned, before its client heard back:
	// not left to the reaper.
	waitReleased(t, h, 0, 0)

	err = h.conn.Invoke(ctx, "/acme.greeter.v1.GreeterService/SayHelloInTheFuture", &greeterv1.SayHelloRequest{Name: "Ada"}, &greeterv1.SayHelloResponse{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("unknown method: %v, want UNIMPLEMENTED", err)
	}
	if got := h.srv.admission.InFlight(); got != 0 {
		t.Errorf("an unknown method was counted: %d RPCs in flight", got)
	}
}

// TestOverloadRefusals fills a client's cap (WithMaxRPCMemoryPerClient)
// with response streams held in their handler: the next RPC is refused
// RESOURCE_EXHAUSTED with a RetryInfo, health checks are answered, the
// refusal is counted, and what the refused RPC was charged is given back.
func TestOverloadRefusals(t *testing.T) {
	h := start(t, withOptions(WithMaxRPCMemoryPerClient(minRPCMemory)))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	held := int(minRPCMemory / admission.RPCCost)
	for range held {
		s, err := h.greeter.SayHelloStream(ctx, &greeterv1.SayHelloStreamRequest{Name: "Ada", Count: 2, Interval: durationpb.New(10 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	_, err := h.greeter.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "Ada"})
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("the RPC past the client's cap: %v, want RESOURCE_EXHAUSTED", err)
	}
	hasRetry := false
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() == admission.RetryAfter {
			hasRetry = true
		}
	}
	if !hasRetry {
		t.Errorf("no RetryInfo of %s: %v", admission.RetryAfter, st.Details())
	}
	if resp, err := h.health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health check with the client at its cap: %v, %v", resp, err)
	}
	if got := testutil.ToFloat64(h.metrics.Overload.StreamsRefused.WithLabelValues(admission.LimitMaxRPCMemoryPerClient)); got != 1 {
		t.Errorf("greeter_streams_refused_total{limit=%q} = %v, want 1", admission.LimitMaxRPCMemoryPerClient, got)
	}
	if got := h.srv.admission.InFlight(); got != held {
		t.Errorf("%d RPCs in flight after the refusal, want the %d held: the refused one was not released", got, held)
	}
}
