package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/acme/greeter/clients/greetctl/internal/cli"
	"github.com/acme/greeter/clients/greetctl/internal/exitcode"
	"github.com/acme/greeter/clients/greetctl/internal/greettest"
)

const (
	callerTrace       = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan        = "00f067aa0ba902b7"
	callerTraceparent = "00-" + callerTrace + "-" + callerSpan + "-01"
)

// runTraced runs greetctl with tracing on, into an in-memory exporter,
// and returns the spans it exported by the time it exited.
func runTraced(t *testing.T, inv invocation) (result, tracetest.SpanStubs) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	var out, errOut bytes.Buffer
	code := cli.Main(context.Background(), inv.args, strings.NewReader(inv.stdin), &out, &errOut,
		cli.WithEnv(inv.env), cli.WithBuild(testBuild), cli.WithSpanExporter(keptExporter{exp}))
	return result{code: code, stdout: out.String(), stderr: errOut.String()}, exp.GetSpans()
}

// keptExporter keeps the spans past Shutdown, which greetctl calls on exit.
type keptExporter struct{ *tracetest.InMemoryExporter }

func (keptExporter) Shutdown(context.Context) error { return nil }

// sentTraceparents are the traceparent headers of each call s received.
func sentTraceparents(s *greettest.Server) []string {
	var out []string
	for _, md := range s.Metadata() {
		out = append(out, strings.Join(md.Get("traceparent"), " | "))
	}
	return out
}

func byName(spans tracetest.SpanStubs) map[string]tracetest.SpanStub {
	m := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		m[s.Name] = s
	}
	return m
}

// TestCommandSpan checks the spans of one command: the command's, a client
// span per call under it, and the trace context the server receives naming
// the client span as its parent.
func TestCommandSpan(t *testing.T) {
	s := greettest.Start(t, greettest.Options{})
	r, spans := runTraced(t, invocation{args: args(addr(s), "-v", "hello", "Ada")})
	if r.code != 0 {
		t.Fatalf("got %v", r)
	}
	got := byName(spans)
	cmd, call := got["greetctl hello"], got["acme.greeter.v1.GreeterService/SayHello"]
	if len(spans) != 2 || !cmd.SpanContext.IsValid() || !call.SpanContext.IsValid() {
		t.Fatalf("spans %v, want greetctl hello and its SayHello call", spanNames(spans))
	}
	if cmd.Parent.IsValid() {
		t.Errorf("command span has parent %v, want a new trace", cmd.Parent)
	}
	if call.Parent.SpanID() != cmd.SpanContext.SpanID() || call.SpanKind != trace.SpanKindClient {
		t.Errorf("call span kind %v parent %v, want a client span child of the command's %v", call.SpanKind, call.Parent.SpanID(), cmd.SpanContext.SpanID())
	}
	want := "00-" + call.SpanContext.TraceID().String() + "-" + call.SpanContext.SpanID().String() + "-01"
	if sent := sentTraceparents(s); len(sent) != 1 || sent[0] != want {
		t.Errorf("server received traceparent %q, want %q", sent, want)
	}
	if line := "* trace-id: " + cmd.SpanContext.TraceID().String() + "\n"; !strings.Contains(r.stderr, line) {
		t.Errorf("-v output lacks %q:\n%s", line, r.stderr)
	}
	if rs := attrMap(cmd.Resource.Attributes()); rs["service.name"] != "greetctl" || rs["service.version"] != testBuild.Version {
		t.Errorf("resource %v, want service.name greetctl, service.version %s", rs, testBuild.Version)
	}
}

// TestContinuesCallersTrace checks --traceparent and -H traceparent, with
// tracing on (the command span is the caller's child) and off (the server
// receives the caller's traceparent as given).
func TestContinuesCallersTrace(t *testing.T) {
	for _, form := range [][]string{
		{"--traceparent", callerTraceparent},
		{"-H", "traceparent: " + callerTraceparent, "-H", "tracestate: vendor=x"},
	} {
		t.Run(form[0]+" traced", func(t *testing.T) {
			s := greettest.Start(t, greettest.Options{})
			r, spans := runTraced(t, invocation{args: args(addr(s), append(form, "hello", "Ada")...)})
			if r.code != 0 {
				t.Fatalf("got %v", r)
			}
			cmd := byName(spans)["greetctl hello"]
			if cmd.SpanContext.TraceID().String() != callerTrace || cmd.Parent.SpanID().String() != callerSpan || !cmd.Parent.IsRemote() {
				t.Errorf("command span in trace %s, parent %s; want the caller's %s, %s", cmd.SpanContext.TraceID(), cmd.Parent.SpanID(), callerTrace, callerSpan)
			}
			sent := sentTraceparents(s)
			if len(sent) != 1 || !strings.HasPrefix(sent[0], "00-"+callerTrace+"-") || strings.Contains(sent[0], callerSpan) || strings.Contains(sent[0], "|") {
				t.Errorf("server received traceparent %q, want one in the caller's trace with greetctl's span as parent", sent)
			}
			if form[0] == "-H" {
				if st := s.Metadata()[0].Get("tracestate"); len(st) != 1 || st[0] != "vendor=x" {
					t.Errorf("server received tracestate %q, want the caller's vendor=x", st)
				}
			}
		})
		t.Run(form[0]+" untraced", func(t *testing.T) {
			s := greettest.Start(t, greettest.Options{})
			r := run(t, invocation{args: args(addr(s), append(form, "-v", "hello", "Ada")...)})
			if r.code != 0 {
				t.Fatalf("got %v", r)
			}
			if sent := sentTraceparents(s); len(sent) != 1 || sent[0] != callerTraceparent {
				t.Errorf("server received traceparent %q, want the caller's %q as given", sent, callerTraceparent)
			}
			if !strings.Contains(r.stderr, "* trace-id: "+callerTrace+"\n") {
				t.Errorf("-v output lacks the caller's trace id:\n%s", r.stderr)
			}
		})
	}
}

// TestUntraced checks that without OTEL_* configuration nothing is added
// to the calls, and -v names no trace.
func TestUntraced(t *testing.T) {
	s := greettest.Start(t, greettest.Options{})
	r := run(t, invocation{args: args(addr(s), "-v", "hello", "Ada")})
	if r.code != 0 || strings.Contains(r.stderr, "trace-id") {
		t.Fatalf("got %v, want success and no trace id", r)
	}
	if sent := sentTraceparents(s); len(sent) != 1 || sent[0] != "" {
		t.Errorf("server received traceparent %q, want none", sent)
	}
}

func TestMalformedTraceparent(t *testing.T) {
	s := greettest.Start(t, greettest.Options{})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"flag", []string{"--traceparent", "4bf92f3577b34da6a3ce929d0e0e4736"}, "--traceparent: \"4bf92f3577b34da6a3ce929d0e0e4736\" is not a W3C traceparent: want 00-<trace id: 32 hex digits>-"},
		{"zero trace id", []string{"--traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}, "is not a W3C traceparent"},
		{"header", []string{"-H", "traceparent: 00-xyz"}, "-H traceparent: \"00-xyz\" is not a W3C traceparent: want 00-"},
		{"both", []string{"--traceparent", callerTraceparent, "-H", "traceparent: " + callerTraceparent}, "--traceparent and -H traceparent: give the caller's trace context once"},
		{"header twice", []string{"-H", "traceparent: " + callerTraceparent, "-H", "traceparent: " + callerTraceparent}, "traceparent given 2 times"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, spans := runTraced(t, invocation{args: args(addr(s), append(tt.args, "hello", "Ada")...)})
			if r.code != exitcode.Usage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("got %v, want exit 2 with %q", r, tt.want)
			}
			if len(spans) != 0 {
				t.Errorf("a usage error exported spans %v", spanNames(spans))
			}
		})
	}
	if n := len(s.Metadata()); n != 0 {
		t.Errorf("server saw %d calls, want none: usage errors come first", n)
	}
}

// TestRejectedCommandSpan checks that a failed command's span says so.
func TestRejectedCommandSpan(t *testing.T) {
	s := greettest.Start(t, greettest.Options{})
	r, spans := runTraced(t, invocation{args: args(addr(s), "hello", greettest.CodePrefix+"InvalidArgument")})
	if r.code != exitcode.Rejected {
		t.Fatalf("got %v", r)
	}
	got := byName(spans)
	cmd, call := got["greetctl hello"], got["acme.greeter.v1.GreeterService/SayHello"]
	if cmd.Status.Code != otelcodes.Error || cmd.Status.Description != "InvalidArgument" || attrMap(cmd.Attributes)["process.exit.code"] != "3" {
		t.Errorf("command span status %v attributes %v, want Error InvalidArgument, process.exit.code 3", cmd.Status, cmd.Attributes)
	}
	if call.Status.Code != otelcodes.Error || attrMap(call.Attributes)["rpc.response.status_code"] != "INVALID_ARGUMENT" {
		t.Errorf("call span status %v attributes %v, want Error, INVALID_ARGUMENT", call.Status, call.Attributes)
	}
}

// TestRetriedCallSpans checks that each attempt of a retried call is a
// span of its own under the command's.
func TestRetriedCallSpans(t *testing.T) {
	s := greettest.Start(t, greettest.Options{FailUnary: 1})
	r, spans := runTraced(t, invocation{args: args(addr(s), "hello", "Ada")})
	if r.code != 0 {
		t.Fatalf("got %v", r)
	}
	var attempts []string
	cmd := byName(spans)["greetctl hello"]
	for _, sp := range spans {
		if sp.Name == "acme.greeter.v1.GreeterService/SayHello" && sp.Parent.SpanID() == cmd.SpanContext.SpanID() {
			attempts = append(attempts, attrMap(sp.Attributes)["rpc.response.status_code"])
		}
	}
	if strings.Join(attempts, ",") != "UNAVAILABLE,OK" {
		t.Errorf("attempt spans %v, want UNAVAILABLE then OK", attempts)
	}
}

func TestBadTracingEnvironment(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "zipkin") // read by OpenTelemetry's autoexport
	s := greettest.Start(t, greettest.Options{})
	r := run(t, invocation{args: args(addr(s), "hello", "Ada"), env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}})
	if r.code != exitcode.Usage || !strings.Contains(r.stderr, "OTEL_TRACES_EXPORTER takes otlp, console or none") {
		t.Errorf("got %v, want exit 2 naming OTEL_TRACES_EXPORTER", r)
	}
}

func spanNames(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}
