package tracing_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"

	"github.com/acme/greeter/services/greeter/internal/tracing"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestEnabled(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"nothing set", nil, false},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"}, true},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://localhost:4318/v1/traces"}, true},
		{"empty endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, false},
		{"exporter otlp", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{"exporter console", map[string]string{"OTEL_TRACES_EXPORTER": "console"}, true},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none"}, false},
		{"exporter none beats endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "None", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, false},
		{"empty exporter, endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, true},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, false},
		{"sdk not disabled", map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, true},
		{"only other OTEL variables", map[string]string{"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tracing.Enabled(env(tt.env)); got != tt.want {
				t.Errorf("Enabled = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestOff checks that an environment without an exporter gives no
// provider and no handler: the server installs nothing.
func TestOff(t *testing.T) {
	p, err := tracing.New(context.Background(), tracing.WithLookupEnv(env(nil)))
	if err != nil || p != nil {
		t.Fatalf("New = %v, %v; want nil, nil", p, err)
	}
	if h := p.ServerHandler(); h != nil {
		t.Errorf("nil Provider's ServerHandler = %v, want nil", h)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Errorf("nil Provider's Shutdown: %v", err)
	}
}

func TestBadConfiguration(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unknown exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"},
		{"unknown protocol", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"malformed resource", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment"}, "OTEL_RESOURCE_ATTRIBUTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v) // the OpenTelemetry packages read the process environment
			}
			p, err := tracing.New(context.Background(), tracing.WithLogger(slog.New(slog.DiscardHandler)))
			if err == nil {
				p.Shutdown(context.Background())
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %s", err, tt.want)
			}
		})
	}
}

func TestResource(t *testing.T) {
	tests := []struct {
		name                 string
		env                  map[string]string
		wantName, wantVersio string
	}{
		{"defaults", nil, "greeter", "v1.2.3"},
		{"OTEL_SERVICE_NAME", map[string]string{"OTEL_SERVICE_NAME": "greeter-canary"}, "greeter-canary", "v1.2.3"},
		{"OTEL_RESOURCE_ATTRIBUTES", map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "service.name=edge,service.version=v9"}, "edge", "v9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			f := startTracedWith(t, []tracing.Option{tracing.WithServiceVersion("v1.2.3")})
			f.hello(t, context.Background(), "Ada")
			spans := f.finish(t)
			if len(spans) != 1 {
				t.Fatalf("got %d spans, want 1", len(spans))
			}
			got := attrs(spans[0].Resource.Attributes())
			if got["service.name"] != tt.wantName || got["service.version"] != tt.wantVersio {
				t.Errorf("resource %v, want service.name %q, service.version %q", got, tt.wantName, tt.wantVersio)
			}
			if got["telemetry.sdk.name"] != "opentelemetry" {
				t.Errorf("resource %v lacks telemetry.sdk.*", got)
			}
		})
	}
}

const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
)

// TestServerSpan checks the span of a unary call: a child of the caller's
// span, named after the method, with the RPC semantic conventions'
// attributes, and the access log line pointing at it.
func TestServerSpan(t *testing.T) {
	f := startTraced(t)
	ctx := metadata.AppendToOutgoingContext(context.Background(),
		"traceparent", "00-"+callerTrace+"-"+callerSpan+"-01", "tracestate", "vendor=x", "baggage", "tenant=acme")
	f.hello(t, ctx, "Ada")
	spans := f.finish(t)
	if len(spans) != 1 {
		t.Fatalf("got %d spans, want 1: %v", len(spans), names(spans))
	}
	s := spans[0]
	if s.Name != "acme.greeter.v1.GreeterService/SayHello" || s.SpanKind != trace.SpanKindServer {
		t.Errorf("span %q kind %v, want acme.greeter.v1.GreeterService/SayHello, server", s.Name, s.SpanKind)
	}
	if s.SpanContext.TraceID().String() != callerTrace || s.Parent.SpanID().String() != callerSpan || !s.Parent.IsRemote() {
		t.Errorf("span in trace %s with parent %s (remote %v), want the caller's %s, %s",
			s.SpanContext.TraceID(), s.Parent.SpanID(), s.Parent.IsRemote(), callerTrace, callerSpan)
	}
	if got := s.SpanContext.TraceState().Get("vendor"); got != "x" {
		t.Errorf("tracestate vendor=%q, want x", got)
	}
	got := attrs(s.Attributes)
	for k, want := range map[string]any{
		"rpc.system.name":          "grpc",
		"rpc.method":               "acme.greeter.v1.GreeterService/SayHello",
		"rpc.response.status_code": "OK",
	} {
		if got[k] != want {
			t.Errorf("attribute %s = %v, want %v (all: %v)", k, got[k], want, got)
		}
	}
	if len(s.Events) != 0 {
		t.Errorf("span has events %v, want none without WithMessageEvents", s.Events)
	}
	line := f.logLine(t, "SayHello")
	for _, want := range []string{"trace_id=" + callerTrace, "span_id=" + s.SpanContext.SpanID().String()} {
		if !strings.Contains(line, want) {
			t.Errorf("access log line %q lacks %s", line, want)
		}
	}
}

// TestSamplingRespectsParent checks that a caller that did not sample its
// trace gets no span (the default sampler is parent-based), and that the
// access log then carries no ids that lead nowhere.
func TestSamplingRespectsParent(t *testing.T) {
	f := startTraced(t)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+callerTrace+"-"+callerSpan+"-00")
	f.hello(t, ctx, "Ada")
	if spans := f.finish(t); len(spans) != 0 {
		t.Errorf("got spans %v for an unsampled caller, want none", names(spans))
	}
	if line := f.logLine(t, "SayHello"); strings.Contains(line, "trace_id") {
		t.Errorf("access log line %q of an unsampled call has a trace_id", line)
	}
}

// TestNewRoot checks that a call without trace context starts a trace.
func TestNewRoot(t *testing.T) {
	f := startTraced(t)
	f.hello(t, context.Background(), "Ada")
	spans := f.finish(t)
	if len(spans) != 1 || spans[0].Parent.IsValid() {
		t.Fatalf("got %v, want one root span", spans)
	}
}

// TestRejectedFields checks that a call validation rejects records the
// code, the field paths and the rules, and never the values.
func TestRejectedFields(t *testing.T) {
	f := startTraced(t)
	secret := strings.Repeat("sekrit", 20) // over the 100-character limit
	_, err := f.greeter.SayHello(context.Background(), &greeterv1.SayHelloRequest{Name: secret})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("SayHello: %v, want InvalidArgument", err)
	}
	stream, err := f.greeter.SayHelloToAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"Ada", "   "} {
		if err := stream.Send(&greeterv1.SayHelloToAllRequest{Name: n}); err != nil {
			break
		}
	}
	if _, err := stream.CloseAndRecv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("SayHelloToAll: %v, want InvalidArgument", err)
	}
	spans := f.finish(t)
	want := map[string]struct{ field, rule string }{
		"acme.greeter.v1.GreeterService/SayHello":      {"name", "string.max_len"},
		"acme.greeter.v1.GreeterService/SayHelloToAll": {"name", "name.not_blank"},
	}
	if len(spans) != len(want) {
		t.Fatalf("got spans %v, want %d", names(spans), len(want))
	}
	for _, s := range spans {
		w := want[s.Name]
		got := attrs(s.Attributes)
		if got["rpc.response.status_code"] != "INVALID_ARGUMENT" {
			t.Errorf("%s: rpc.response.status_code %v, want INVALID_ARGUMENT", s.Name, got["rpc.response.status_code"])
		}
		if f, r := got[string(tracing.RejectedFieldsKey)], got[string(tracing.RejectedRulesKey)]; !equal(f, []string{w.field}) || !equal(r, []string{w.rule}) {
			t.Errorf("%s: rejected fields %v rules %v, want [%s] [%s]", s.Name, f, r, w.field, w.rule)
		}
		for _, kv := range allAttributes(s) {
			if v := kv.Value.Emit(); strings.Contains(v, "sekrit") {
				t.Errorf("%s: attribute %s carries the rejected value: %q", s.Name, kv.Key, v)
			}
		}
		if strings.Contains(s.Status.Description, "sekrit") {
			t.Errorf("%s: status description carries the rejected value", s.Name)
		}
	}
}

// TestHealthAndReflection checks that probes and reflection make no spans
// by default, and do with WithHealthAndReflection.
func TestHealthAndReflection(t *testing.T) {
	for _, traced := range []bool{false, true} {
		f := startTraced(t, tracing.WithHealthAndReflection(traced))
		if _, err := healthpb.NewHealthClient(f.conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
		rs, err := reflectionpb.NewServerReflectionClient(f.conn).ServerReflectionInfo(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
			t.Fatal(err)
		}
		if _, err := rs.Recv(); err != nil {
			t.Fatal(err)
		}
		rs.CloseSend()
		if _, err := rs.Recv(); err != io.EOF {
			t.Fatalf("reflection stream: %v, want EOF", err)
		}
		f.hello(t, context.Background(), "Ada")
		// Sorted: the reflection stream's span may end after the next
		// call's, as the client sees its end before the server's handler
		// returns.
		spans := names(f.finish(t))
		slices.Sort(spans)
		got := strings.Join(spans, ",")
		want := "acme.greeter.v1.GreeterService/SayHello"
		if traced {
			want += ",grpc.health.v1.Health/Check,grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
		}
		if got != want {
			t.Errorf("WithHealthAndReflection(%v): spans %s, want %s", traced, got, want)
		}
	}
}

// TestStreamSpan checks that a stream is one span, with an event per
// message only under WithMessageEvents.
func TestStreamSpan(t *testing.T) {
	for _, events := range []bool{false, true} {
		f := startTraced(t, tracing.WithMessageEvents(events))
		stream, err := f.greeter.SayHelloStream(context.Background(), &greeterv1.SayHelloStreamRequest{Name: "Ada", Count: 3})
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
		spans := f.finish(t)
		if len(spans) != 1 {
			t.Fatalf("got spans %v, want one for the stream", names(spans))
		}
		var got []string
		for _, e := range spans[0].Events {
			a := attrs(e.Attributes)
			got = append(got, e.Name+" "+a["rpc.message.type"].(string)+" "+a["rpc.message.id"].(string))
		}
		want := ""
		if events {
			want = "rpc.message RECEIVED 1,rpc.message SENT 1,rpc.message SENT 2,rpc.message SENT 3"
		}
		if strings.Join(got, ",") != want {
			t.Errorf("WithMessageEvents(%v): events %q, want %q", events, got, want)
		}
	}
}
