// Package interceptors adapts go-grpc-middleware's logging and recovery
// interceptors to the greeter: slog for access lines, and panics that are
// logged with their stack, counted, and answered with INTERNAL.
//
// The order they run in is decided by package server.
package interceptors

import (
	"context"
	"log/slog"
	"runtime/debug"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// healthService is logged at debug only: load balancers and orchestrators
// probe it every few seconds, which would drown the access log.
var healthService = grpc_health_v1.Health_ServiceDesc.ServiceName

// AccessLog returns the logging interceptors that write one line per RPC
// when it finishes: service, method, code, duration and peer.
func AccessLog(l *slog.Logger) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	logger := slogAdapter(l)
	opts := []logging.Option{
		// One line per RPC, at its end, never the payloads.
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithDurationField(logging.DurationToDurationField),
	}
	return logging.UnaryServerInterceptor(logger, opts...), logging.StreamServerInterceptor(logger, opts...)
}

// slogAdapter routes go-grpc-middleware log calls to l. It asks l whether
// the level is enabled before anything else, so below the configured level a
// call costs one comparison and no formatting.
func slogAdapter(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		level := slog.Level(lvl)
		if level < slog.LevelWarn && isHealth(fields) {
			level = slog.LevelDebug
		}
		if !l.Enabled(ctx, level) {
			return
		}
		l.Log(ctx, level, msg, fields...)
	})
}

func isHealth(fields []any) bool {
	for i := 0; i+1 < len(fields); i += 2 {
		if k, ok := fields[i].(string); ok && k == logging.ServiceFieldKey {
			s, _ := fields[i+1].(string)
			return s == healthService
		}
	}
	return false
}

// Counter is the part of a Prometheus counter that recovery needs.
type Counter interface{ Inc() }

// Recovery returns recovery interceptors that turn a panic into INTERNAL
// for the client, log it at error with its stack, and count it in panics.
// The process stays up; the client never sees the panic value, which may
// carry internal details.
func Recovery(l *slog.Logger, panics Counter) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	handler := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		panics.Inc()
		// The handler runs in the deferred recover, still on the panicking
		// goroutine's stack, so the stack shows where the panic happened.
		l.ErrorContext(ctx, "recovered from panic", "panic", p, "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})
	return recovery.UnaryServerInterceptor(handler), recovery.StreamServerInterceptor(handler)
}
