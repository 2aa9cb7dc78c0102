package tracing_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"

	"github.com/acme/greeter/services/greeter/internal/server"
	"github.com/acme/greeter/services/greeter/internal/testconn"
	"github.com/acme/greeter/services/greeter/internal/tracing"
)

// fixture is a greeter server on an in-memory listener, traced into an
// in-memory exporter.
type fixture struct {
	greeter  greeterv1.GreeterServiceClient
	conn     *grpc.ClientConn
	srv      *server.Server
	provider *tracing.Provider
	exporter *keptExporter
	logs     *syncBuffer
	served   chan error
	finished bool
}

// keptExporter keeps its spans past Shutdown, which the in-memory
// exporter would forget: Provider.Shutdown is the flush under test.
type keptExporter struct{ *tracetest.InMemoryExporter }

func (keptExporter) Shutdown(context.Context) error { return nil }

func startTraced(t testing.TB, opts ...tracing.HandlerOption) *fixture {
	t.Helper()
	return startTracedWith(t, nil, opts...)
}

func startTracedWith(t testing.TB, popts []tracing.Option, opts ...tracing.HandlerOption) *fixture {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	exp := &keptExporter{tracetest.NewInMemoryExporter()}
	p, err := tracing.New(context.Background(), append([]tracing.Option{tracing.WithSpanExporter(exp), tracing.WithLogger(logger)}, popts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.WithLogger(logger), server.WithStatsHandler(p.ServerHandler(opts...)))
	if err != nil {
		t.Fatal(err)
	}
	lis := testconn.Listen()
	f := &fixture{srv: srv, provider: p, exporter: exp, logs: logs, served: make(chan error, 1)}
	go func() { f.served <- srv.Serve(lis, nil) }()
	f.conn, err = lis.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	f.greeter = greeterv1.NewGreeterServiceClient(f.conn)
	t.Cleanup(func() {
		if !f.finished {
			f.finish(t)
		}
	})
	return f
}

func (f *fixture) hello(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if _, err := f.greeter.SayHello(ctx, &greeterv1.SayHelloRequest{Name: name}); err != nil {
		t.Fatal(err)
	}
}

// finish drains the server, so that every span has ended, flushes the
// provider and returns the spans exported.
func (f *fixture) finish(t testing.TB) tracetest.SpanStubs {
	t.Helper()
	f.finished = true
	f.conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil {
		t.Errorf("server Shutdown: %v", err)
	}
	if err := <-f.served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := f.provider.Shutdown(ctx); err != nil {
		t.Errorf("tracing Shutdown: %v", err)
	}
	return f.exporter.GetSpans()
}

// logLine is the access log line of method.
func (f *fixture) logLine(t *testing.T, method string) string {
	t.Helper()
	for _, line := range strings.Split(f.logs.String(), "\n") {
		if strings.Contains(line, "finished call") && strings.Contains(line, "grpc.method="+method) {
			return line
		}
	}
	t.Fatalf("no access log line for %s in:\n%s", method, f.logs.String())
	return ""
}

func names(spans tracetest.SpanStubs) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	// Spans end in the order their calls finish.
	return out
}

// attrs renders attributes as strings, string slices as []string.
func attrs(kvs []attribute.KeyValue) map[string]any {
	m := map[string]any{}
	for _, kv := range kvs {
		if kv.Value.Type() == attribute.STRINGSLICE {
			m[string(kv.Key)] = kv.Value.AsStringSlice()
			continue
		}
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

func allAttributes(s tracetest.SpanStub) []attribute.KeyValue {
	all := append([]attribute.KeyValue(nil), s.Attributes...)
	for _, e := range s.Events {
		all = append(all, e.Attributes...)
	}
	return all
}

func equal(got any, want []string) bool {
	g, ok := got.([]string)
	return ok && strings.Join(g, "\x00") == strings.Join(want, "\x00")
}

var _ sdktrace.SpanExporter = keptExporter{}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
