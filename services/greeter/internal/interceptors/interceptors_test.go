package interceptors

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/acme/greeter/services/greeter/internal/rpcmethod"
)

func TestAccessLogLevels(t *testing.T) {
	tests := []struct {
		desc   string
		min    slog.Level
		method string
		err    error
		want   []string // nil when nothing is logged
	}{
		{"ok at info", slog.LevelInfo, "/acme.greeter.v1.GreeterService/SayHello", nil,
			[]string{"level=INFO", "grpc.service=acme.greeter.v1.GreeterService", "grpc.method=SayHello", "grpc.code=OK", "grpc.duration="}},
		{"below the configured level", slog.LevelWarn, "/acme.greeter.v1.GreeterService/SayHello", nil, nil},
		{"client error at info", slog.LevelInfo, "/acme.greeter.v1.GreeterService/SayHello",
			status.Error(codes.InvalidArgument, "bad name"), []string{"level=INFO", "grpc.code=InvalidArgument", `grpc.error="bad name"`}},
		{"limits at warn", slog.LevelWarn, "/acme.greeter.v1.GreeterService/SayHello",
			status.Error(codes.ResourceExhausted, "slow down"), []string{"level=WARN", "grpc.code=ResourceExhausted"}},
		{"server fault at error", slog.LevelError, "/acme.greeter.v1.GreeterService/SayHello",
			status.Error(codes.Internal, "oops"), []string{"level=ERROR", "grpc.code=Internal"}},
		{"health at info is lowered to debug", slog.LevelInfo, "/grpc.health.v1.Health/Check", nil, nil},
		{"health at debug", slog.LevelDebug, "/grpc.health.v1.Health/Check", nil, []string{"level=DEBUG", "grpc.service=grpc.health.v1.Health"}},
		{"health failures keep their level", slog.LevelInfo, "/grpc.health.v1.Health/Check",
			status.Error(codes.Internal, "x"), []string{"level=ERROR"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			var buf bytes.Buffer
			unary, stream := AccessLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.min})))
			_, err := unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: tt.method},
				func(context.Context, any) (any, error) { return nil, tt.err })
			if err != tt.err {
				t.Fatalf("unary returned %v, want the handler's %v", err, tt.err)
			}
			err = stream(nil, ctxStream{}, &grpc.StreamServerInfo{FullMethod: tt.method},
				func(any, grpc.ServerStream) error { return tt.err })
			if err != tt.err {
				t.Fatalf("stream returned %v, want the handler's %v", err, tt.err)
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if tt.want == nil {
				if buf.Len() != 0 {
					t.Fatalf("logged %q, want nothing", buf.String())
				}
				return
			}
			if len(lines) != 2 {
				t.Fatalf("logged %q, want one line per RPC", lines)
			}
			for _, line := range lines {
				for _, w := range append([]string{"finished call"}, tt.want...) {
					if !strings.Contains(line, w) {
						t.Errorf("line %q lacks %q", line, w)
					}
				}
			}
		})
	}
}

// TestAccessLogBelowLevelAllocatesNothing pins the promise that an RPC whose
// access line is below the configured level pays no allocation for it.
// TestAccessLogTraceIDs checks that the line of a call whose span is
// sampled names the trace and the span, and that of an unsampled or
// untraced call does not.
func TestAccessLogTraceIDs(t *testing.T) {
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	tests := []struct {
		desc string
		ctx  context.Context
		want bool
	}{
		{"sampled", trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled})), true},
		{"unsampled", trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: traceID, SpanID: spanID})), false},
		{"untraced", context.Background(), false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			var buf bytes.Buffer
			unary, _ := AccessLog(slog.New(slog.NewTextHandler(&buf, nil)))
			if _, err := unary(tt.ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/acme.greeter.v1.GreeterService/SayHello"},
				func(context.Context, any) (any, error) { return nil, nil }); err != nil {
				t.Fatal(err)
			}
			ids := "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7"
			if got := strings.Contains(buf.String(), ids); got != tt.want {
				t.Errorf("line %q has %q: %v, want %v", buf.String(), ids, got, tt.want)
			}
			if !tt.want && strings.Contains(buf.String(), "trace_id") {
				t.Errorf("line %q has a trace_id", buf.String())
			}
		})
	}
}

func TestAccessLogBelowLevelAllocatesNothing(t *testing.T) {
	unary, _ := AccessLog(slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})))
	info := &grpc.UnaryServerInfo{FullMethod: "/acme.greeter.v1.GreeterService/SayHello"}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { _, _ = unary(ctx, nil, info, handler) }); n != 0 {
		t.Errorf("%v allocations per RPC below the log level, want 0", n)
	}
}

type counter struct{ n int }

// ctxStream is a server stream with only a context, all recovery reads.
type ctxStream struct{ grpc.ServerStream }

func (ctxStream) Context() context.Context { return context.Background() }

func (c *counter) Inc() { c.n++ }

func TestRecovery(t *testing.T) {
	var buf bytes.Buffer
	var panics counter
	unary, stream := Recovery(slog.New(slog.NewTextHandler(&buf, nil)), &panics)

	_, err := unary(context.Background(), nil, &grpc.UnaryServerInfo{}, func(context.Context, any) (any, error) {
		panic("secret detail")
	})
	if st := status.Convert(err); st.Code() != codes.Internal || strings.Contains(st.Message(), "secret") {
		t.Fatalf("unary panic: %v, want Internal without the panic value", err)
	}
	err = stream(nil, ctxStream{}, &grpc.StreamServerInfo{}, func(any, grpc.ServerStream) error { panic("again") })
	if status.Code(err) != codes.Internal {
		t.Fatalf("stream panic: %v, want Internal", err)
	}
	if panics.n != 2 {
		t.Errorf("counted %d panics, want 2", panics.n)
	}
	if !strings.Contains(buf.String(), "panic=\"secret detail\"") || !strings.Contains(buf.String(), "TestRecovery") {
		t.Errorf("log lacks the panic value or the stack: %s", buf.String())
	}
}

// TestAccessLogLineIsSlogs: the line is the one slog writes for the
// record with every attribute in order, in text and JSON and under a
// logger's own attributes and group, although the service, method and
// code are formatted once per method and code (everything but time and
// duration compared).
func TestAccessLogLineIsSlogs(t *testing.T) {
	noClock := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == "grpc.duration" {
			return slog.Attr{}
		}
		return a
	}}
	handlers := map[string]func(io.Writer) slog.Handler{
		"text": func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, noClock) },
		"json": func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, noClock) },
	}
	loggers := map[string]func(slog.Handler) *slog.Logger{
		"plain":         slog.New,
		"with attrs":    func(h slog.Handler) *slog.Logger { return slog.New(h).With("app", "greeter") },
		"with a group":  func(h slog.Handler) *slog.Logger { return slog.New(h).WithGroup("rpc") },
		"group, attrs ": func(h slog.Handler) *slog.Logger { return slog.New(h).With("app", "greeter").WithGroup("rpc") },
	}
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}})
	calls := []struct {
		method string
		err    error
	}{
		{"/acme.greeter.v1.GreeterService/SayHello", nil},
		{"/acme.greeter.v1.GreeterService/SayHello", nil},
		{"/acme.greeter.v1.GreeterService/SayHello", status.Error(codes.InvalidArgument, `bad "name"`)},
		{"/helloworld.Greeter/SayHello", nil},
		{"/acme.greeter.v1.GreeterService/SayHello", status.Error(codes.Code(42), "odd")},
		{"/acme.greeter.v1.GreeterService/SayHelloChat", status.Error(codes.Internal, "oops")},
	}
	for hname, newHandler := range handlers {
		for lname, newLogger := range loggers {
			t.Run(hname+"/"+lname, func(t *testing.T) {
				var got, want bytes.Buffer
				unary, _ := AccessLog(newLogger(newHandler(&got)))
				reference := newLogger(newHandler(&want))
				for _, c := range calls {
					_, _ = unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: c.method},
						func(context.Context, any) (any, error) { return nil, c.err })
					service, method := rpcmethod.Split(c.method)
					attrs := []slog.Attr{
						slog.String("grpc.service", service), slog.String("grpc.method", method),
						slog.String("grpc.code", status.Code(c.err).String()), slog.Duration("grpc.duration", 0),
						slog.String("peer.address", "127.0.0.1:4242"),
					}
					if c.err != nil {
						attrs = append(attrs, slog.String("grpc.error", status.Convert(c.err).Message()))
					}
					reference.LogAttrs(ctx, Level(status.Code(c.err)), "finished call", attrs...)
				}
				if got.String() != want.String() {
					t.Errorf("access lines:\n%s\nslog's own:\n%s", got.String(), want.String())
				}
			})
		}
	}
}
