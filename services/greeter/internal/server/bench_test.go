package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/grpc"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"

	"github.com/acme/greeter/services/greeter/internal/interceptors"
	"github.com/acme/greeter/services/greeter/internal/metrics"
	"github.com/acme/greeter/services/greeter/internal/service"
	"github.com/acme/greeter/services/greeter/internal/testconn"
	"github.com/acme/greeter/services/greeter/internal/validate"
)

// The benchmarks below measure one operation through an in-memory
// connection (bufconn): a unary call, or one message of a stream. Each runs
// against a bare grpc.Server and against servers with one production
// interceptor at a time and with the whole production chain, so the cost of
// each interceptor shows as its difference from bare. Run them with
//
//	go test -run '^$' -bench . -benchmem ./internal/server/
//
// docs/performance.md records the figures.

// chain names a server configuration under benchmark.
type chain struct {
	name string
	new  func(b *testing.B) *grpc.Server
}

// discardLogger logs at level to nowhere: the cost measured is the
// interceptor's and the handler's formatting, not a terminal's.
func discardLogger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: level}))
}

// single builds a bare server with the interceptors of one concern.
func single(name string, pick func(b *testing.B) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor)) chain {
	return chain{name: name, new: func(b *testing.B) *grpc.Server {
		u, s := pick(b)
		srv := grpc.NewServer(grpc.ChainUnaryInterceptor(u), grpc.ChainStreamInterceptor(s))
		greeterv1.RegisterGreeterServiceServer(srv, service.NewGreeter())
		return srv
	}}
}

func chains() []chain {
	production := func(level slog.Level) func(b *testing.B) *grpc.Server {
		return func(b *testing.B) *grpc.Server {
			srv, err := New(WithLogger(discardLogger(level)))
			if err != nil {
				b.Fatal(err)
			}
			return srv.grpc
		}
	}
	newMetrics := func(b *testing.B) *metrics.Metrics {
		m, err := metrics.New()
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	return []chain{
		{"bare", func(*testing.B) *grpc.Server {
			srv := grpc.NewServer()
			greeterv1.RegisterGreeterServiceServer(srv, service.NewGreeter())
			return srv
		}},
		single("recovery", func(b *testing.B) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
			return interceptors.Recovery(discardLogger(slog.LevelInfo), newMetrics(b).Panics)
		}),
		single("metrics", func(b *testing.B) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
			m := newMetrics(b)
			return m.GRPC.UnaryServerInterceptor(), m.GRPC.StreamServerInterceptor()
		}),
		single("accesslog-info", func(*testing.B) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
			return interceptors.AccessLog(discardLogger(slog.LevelInfo))
		}),
		single("accesslog-warn", func(*testing.B) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
			return interceptors.AccessLog(discardLogger(slog.LevelWarn))
		}),
		single("validation", func(b *testing.B) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
			v, err := validate.New()
			if err != nil {
				b.Fatal(err)
			}
			return v.UnaryServerInterceptor(), v.StreamServerInterceptor()
		}),
		{"production-log-info", production(slog.LevelInfo)},
		{"production-log-warn", production(slog.LevelWarn)},
	}
}

func BenchmarkSayHello(b *testing.B) {
	for _, c := range chains() {
		b.Run(c.name, func(b *testing.B) {
			client := greeterv1.NewGreeterServiceClient(benchConn(b, c.new(b)))
			req := &greeterv1.SayHelloRequest{Name: "Ada"}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.SayHello(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSayHelloParallel keeps many unary calls in flight (RunParallel,
// 16 per GOMAXPROCS), so ns/op is the CPU cost of a call at saturation
// rather than the latency of one call alone, which scheduling dominates.
func BenchmarkSayHelloParallel(b *testing.B) {
	for _, c := range chains() {
		b.Run(c.name, func(b *testing.B) {
			client := greeterv1.NewGreeterServiceClient(benchConn(b, c.new(b)))
			req := &greeterv1.SayHelloRequest{Name: "Ada"}
			b.ReportAllocs()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := client.SayHello(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkSayHelloStream measures one greeting of a server stream: each
// call asks for 1,000.
func BenchmarkSayHelloStream(b *testing.B) {
	const perCall = 1000
	for _, c := range chains() {
		b.Run(c.name, func(b *testing.B) {
			client := greeterv1.NewGreeterServiceClient(benchConn(b, c.new(b)))
			b.ReportAllocs()
			var resp greeterv1.SayHelloStreamResponse
			for n := 0; n < b.N; n += perCall {
				stream, err := client.SayHelloStream(context.Background(), &greeterv1.SayHelloStreamRequest{Name: "Ada", Count: perCall})
				if err != nil {
					b.Fatal(err)
				}
				for {
					if err := stream.RecvMsg(&resp); errors.Is(err, io.EOF) {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkSayHelloToAll measures one name sent on a client stream of 1,000.
func BenchmarkSayHelloToAll(b *testing.B) {
	const perCall = 1000
	for _, c := range chains() {
		b.Run(c.name, func(b *testing.B) {
			client := greeterv1.NewGreeterServiceClient(benchConn(b, c.new(b)))
			req := &greeterv1.SayHelloToAllRequest{Name: "Ada"}
			b.ReportAllocs()
			for n := 0; n < b.N; n += perCall {
				stream, err := client.SayHelloToAll(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				for range perCall {
					if err := stream.Send(req); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := stream.CloseAndRecv(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSayHelloChat measures one round trip of a bidi stream.
func BenchmarkSayHelloChat(b *testing.B) {
	for _, c := range chains() {
		b.Run(c.name, func(b *testing.B) {
			client := greeterv1.NewGreeterServiceClient(benchConn(b, c.new(b)))
			stream, err := client.SayHelloChat(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			req := &greeterv1.SayHelloChatRequest{Name: "Ada"}
			var resp greeterv1.SayHelloChatResponse
			b.ReportAllocs()
			for b.Loop() {
				if err := stream.Send(req); err != nil {
					b.Fatal(err)
				}
				if err := stream.RecvMsg(&resp); err != nil {
					b.Fatal(err)
				}
			}
			if err := stream.CloseSend(); err != nil {
				b.Fatal(err)
			}
			if err := stream.RecvMsg(&resp); !errors.Is(err, io.EOF) {
				b.Fatal(err)
			}
		})
	}
}

func benchConn(b *testing.B, s *grpc.Server) *grpc.ClientConn {
	lis := testconn.Listen()
	go func() { _ = s.Serve(lis) }()
	conn, err := lis.NewClient()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(); s.Stop() })
	return conn
}

// BenchmarkWebSayHello is one Connect unary call through the HTTP port's
// handler, in process and without a connection: its allocations are the
// bridge's, connect-go's and the chain's, which the HTTP rows of `make
// bench` pay per call. Its time is not the server's cost (that is measured
// from outside: test/bench).
func BenchmarkWebSayHello(b *testing.B) {
	for _, tc := range []struct {
		name, contentType string
		body              []byte
	}{
		{"connect-proto", "application/proto", []byte("\n\x03Ada")},
		{"connect-json", "application/json", []byte(`{"name":"Ada"}`)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv, err := New(WithLogger(discardLogger(slog.LevelInfo)))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, "/acme.greeter.v1.GreeterService/SayHello", bytes.NewReader(tc.body))
				r.Header.Set("Content-Type", tc.contentType)
				r.Header.Set("Connect-Protocol-Version", "1")
				w := httptest.NewRecorder()
				srv.web.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("answered %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
