package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/acme/greeter/services/greeter/internal/service"
)

// BenchmarkSayHello measures one unary RPC over an in-memory connection,
// through the full production chain and through a bare grpc.Server, so the
// cost of the interceptors shows as the difference.
func BenchmarkSayHello(b *testing.B) {
	full := func(level slog.Level) func(b *testing.B) *grpc.ClientConn {
		return func(b *testing.B) *grpc.ClientConn {
			srv, err := New(WithLogger(slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: level}))))
			if err != nil {
				b.Fatal(err)
			}
			return benchConn(b, srv.grpc)
		}
	}
	bare := func(b *testing.B) *grpc.ClientConn {
		s := grpc.NewServer()
		greeterv1.RegisterGreeterServiceServer(s, service.NewGreeter())
		return benchConn(b, s)
	}
	for _, bc := range []struct {
		name string
		conn func(*testing.B) *grpc.ClientConn
	}{
		{"interceptors/log=info", full(slog.LevelInfo)},
		{"interceptors/log=warn", full(slog.LevelWarn)},
		{"bare", bare},
	} {
		b.Run(bc.name, func(b *testing.B) {
			client := greeterv1.NewGreeterServiceClient(bc.conn(b))
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

func benchConn(b *testing.B, s *grpc.Server) *grpc.ClientConn {
	lis := bufconn.Listen(1 << 20)
	go func() { _ = s.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(); s.Stop() })
	return conn
}
