// Package interceptors holds the greeter's access log (one slog line per
// RPC) and its use of go-grpc-middleware's recovery: panics that are logged
// with their stack, counted, and answered with INTERNAL.
//
// The order they run in is decided by package server.
package interceptors

import (
	"context"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/acme/greeter/services/greeter/internal/readmostly"
	"github.com/acme/greeter/services/greeter/internal/rpcmethod"
)

// AccessLog returns interceptors that write one line per RPC when it
// finishes: "finished call" with grpc.service, grpc.method, grpc.code,
// grpc.duration, peer.address, for a call on the HTTP port its protocol
// (WithProtocol), for failures grpc.error, and for a call
// whose span is sampled (package tracing) trace_id and span_id, so that the
// line and the span can be found from each other. Lines carry no source
// position (slog's AddSource).
//
// The level follows the code as go-grpc-middleware's default does (see
// Level), and health checks that succeed log at debug. When the logger is
// not enabled for that level, the RPC pays for one clock reading and one
// level check, and allocates nothing.
//
// This replaces go-grpc-middleware's logging interceptor, which the greeter
// used first: it builds its fields before it knows whether the line will
// be written, which alone broke the budget of the production chain against
// a bare server (docs/performance.md, "Figures behind the code").
func AccessLog(l *slog.Logger) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	a := &accessLog{l: l}
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		a.logCall(ctx, info.FullMethod, start, err)
		return resp, err
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		a.logCall(ss.Context(), info.FullMethod, start, err)
		return err
	}
	return unary, stream
}

type protocolKey struct{}

// WithProtocol names the protocol a call came in ("connect", "grpc-web",
// "grpc"), for its access line (protocol); a call on the gRPC port has
// none and its line names none.
func WithProtocol(ctx context.Context, protocol string) context.Context {
	return context.WithValue(ctx, protocolKey{}, protocol)
}

// accessLog writes access lines to l.
//
// A method's service, method and code are the same on every line of that
// method and code, so they are formatted once, by slog itself: the handler
// of each (method, code) is l's with those attributes added (WithAttrs),
// which text and JSON handlers format when it is made. The line reads as
// if they had been added to each record, in the same place; a third of the
// access line's CPU went to formatting them again (BenchmarkAccessLogInfo).
type accessLog struct {
	l       *slog.Logger
	methods readmostly.Map[string, *methodLog]
}

// methodLog is how one method's lines are written.
type methodLog struct {
	service, method string
	health          bool
	// byCode holds l's handler with this method's service, method and
	// code attributes, made on first use.
	byCode [numCodes]atomic.Pointer[slog.Handler]
}

// numCodes is the number of gRPC status codes, OK to Unauthenticated.
const numCodes = 17

func (a *accessLog) method(fullMethod string) *methodLog {
	if m, ok := a.methods.Load(fullMethod); ok {
		return m
	}
	return a.methods.LoadOrMake(fullMethod, func() *methodLog {
		service, method := rpcmethod.Split(fullMethod)
		// Health calls are logged at debug only: load balancers and
		// orchestrators probe every few seconds, which would drown the log.
		return &methodLog{service: service, method: method, health: rpcmethod.IsHealthService(service)}
	})
}

// handler returns l's handler with m's attributes and code's.
func (m *methodLog) handler(l *slog.Logger, code codes.Code) slog.Handler {
	attrs := func() []slog.Attr {
		return []slog.Attr{
			slog.String("grpc.service", m.service),
			slog.String("grpc.method", m.method),
			slog.String("grpc.code", code.String()),
		}
	}
	if code >= numCodes {
		return l.Handler().WithAttrs(attrs())
	}
	if h := m.byCode[code].Load(); h != nil {
		return *h
	}
	h := l.Handler().WithAttrs(attrs())
	m.byCode[code].Store(&h)
	return h
}

// logCall writes the access line of one finished RPC, if its level is on.
func (a *accessLog) logCall(ctx context.Context, fullMethod string, start time.Time, err error) {
	code := status.Code(err)
	m := a.method(fullMethod)
	level := Level(code)
	if m.health && level < slog.LevelWarn {
		level = slog.LevelDebug
	}
	if !a.l.Enabled(ctx, level) {
		return
	}
	now := time.Now()
	// The record is built here and given to the handler, as slog.Logger's
	// own methods do, less the runtime.Callers of the call site they take
	// for AddSource (a large part of the line's cost: docs/performance.md, "Figures behind the code"),
	// which the greeter's handlers never report; pc 0 is slog's "no source".
	r := slog.NewRecord(now, level, "finished call", 0)
	r.AddAttrs(slog.Duration("grpc.duration", now.Sub(start)))
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		r.AddAttrs(slog.String("peer.address", p.Addr.String()))
	}
	if protocol, ok := ctx.Value(protocolKey{}).(string); ok {
		r.AddAttrs(slog.String("protocol", protocol))
	}
	if err != nil {
		r.AddAttrs(slog.String("grpc.error", status.Convert(err).Message()))
	}
	// Only a sampled span reaches the tracing backend: an unsampled call's
	// ids would lead nowhere.
	if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	_ = m.handler(a.l, code).Handle(ctx, r)
}

// Level is the access-log level of an RPC that finished with code: info
// for success and for what the client got wrong, warn for what may need
// attention (deadlines, limits, unavailability), error for server faults.
// It is the mapping go-grpc-middleware's logging interceptor uses by
// default, which operators of gRPC services already know.
func Level(code codes.Code) slog.Level {
	switch code {
	case codes.OK, codes.Canceled, codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.Unauthenticated:
		return slog.LevelInfo
	case codes.Unknown, codes.Unimplemented, codes.Internal, codes.DataLoss:
		return slog.LevelError
	default:
		return slog.LevelWarn
	}
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
