package tracing_test

import (
	"context"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"

	"github.com/acme/greeter/services/greeter/internal/server"
	"github.com/acme/greeter/services/greeter/internal/testconn"
	"github.com/acme/greeter/services/greeter/internal/tracing"
)

// BenchmarkSayHelloParallel is the server package's benchmark of the same
// name (unary calls at saturation, so ns/op is CPU per call) with tracing
// off, and on at sample ratios 0.01 and 1.0 into an exporter that discards
// the spans: the cost of the stats handler and the SDK in the server,
// without the OTLP encoding and sending that test/bench's tracebench adds.
// The access log is on (info), as in production: it formats the trace ids.
//
// Besides ns/op (wall time, which other processes on a shared machine
// inflate) it reports cpu-µs/op: the process's user+system time per call,
// client included; the difference between variants is the server's.
func BenchmarkSayHelloParallel(b *testing.B) {
	for _, bc := range []struct {
		name  string
		ratio string // "" is tracing off
	}{
		{"off", ""},
		{"ratio=0.01", "0.01"},
		{"ratio=1.0", "1.0"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			opts := []server.Option{server.WithLogger(logger)}
			var p *tracing.Provider
			if bc.ratio != "" {
				b.Setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
				b.Setenv("OTEL_TRACES_SAMPLER_ARG", bc.ratio)
				var err error
				p, err = tracing.New(context.Background(), tracing.WithSpanExporter(tracetest.NewNoopExporter()), tracing.WithLogger(logger))
				if err != nil {
					b.Fatal(err)
				}
				defer p.Shutdown(context.Background())
				opts = append(opts, server.WithStatsHandler(p.ServerHandler()))
			}
			srv, err := server.New(opts...)
			if err != nil {
				b.Fatal(err)
			}
			lis := testconn.Listen()
			go srv.Serve(lis, nil)
			defer srv.Shutdown(context.Background())
			conn, err := lis.NewClient()
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			client := greeterv1.NewGreeterServiceClient(conn)
			req := &greeterv1.SayHelloRequest{Name: "Ada"}
			b.ReportAllocs()
			b.SetParallelism(16)
			cpu := processCPU(b)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := client.SayHello(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64((processCPU(b)-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// processCPU is the user+system time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
