package interceptors

import (
	"context"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
)

// BenchmarkAccessLogInfo is the access log's cost per unary call at the
// default level, info, written as text (to nowhere).
func BenchmarkAccessLogInfo(b *testing.B) {
	unary, _ := AccessLog(slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})))
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}})
	info := &grpc.UnaryServerInfo{FullMethod: "/acme.greeter.v1.GreeterService/SayHello"}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	b.ReportAllocs()
	start := cpuNow()
	for b.Loop() {
		_, _ = unary(ctx, nil, info, handler)
	}
	reportCPU(b, start)
}

// cpuNow is this process's CPU time: on a shared machine, CPU per
// operation (cpu-ns/op) varies less than wall time per operation, which
// counts the time other processes had the CPU.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuNow()-start)/float64(b.N), "cpu-ns/op")
}
