package server

import (
	"google.golang.org/grpc"

	"github.com/acme/greeter/services/greeter/internal/admission"
	"github.com/acme/greeter/services/greeter/internal/interceptors"
	"github.com/acme/greeter/services/greeter/internal/ratelimit"
	"github.com/acme/greeter/services/greeter/internal/validate"
)

// interceptorChain assembles the server's interceptor chain and the codec it needs.
//
// The chain runs, outermost first:
//
//  0. for unary calls, the validator's decode guard, which only moves a
//     request's decode failure from the codec's record into the context
//     (package validate, codec.go): first, so that a call ended by anything
//     below leaves no record behind;
//  1. recovery: a panic anywhere below, interceptors included, becomes
//     INTERNAL instead of killing the process;
//  2. metrics, then the access log: they time and record every outcome,
//     including validation failures;
//  3. the overload watch (package admission): it notes a stream's first
//     request message and sends blocked by flow control, for the reaper;
//     the overload limits themselves are enforced before the chain, by a
//     tap handle, before grpc-go starts a handler goroutine;
//  4. the per-client rate limit, when WithRateLimit enables it (limiter not
//     nil): rejected calls are still counted and logged
//     (RESOURCE_EXHAUSTED), but cost no validation; health checks are
//     exempt;
//  5. validation: bad requests, and requests that do not decode, never
//     reach the handlers;
//  6. recovery again, so that a handler panic reaches metrics and the
//     access log as an INTERNAL result rather than bypassing them;
//  7. interceptors added with WithUnaryInterceptors/WithStreamInterceptors,
//     which count as part of the handler.
func interceptorChain(o *options, v *validate.Validator, watch *admission.Controller, limiter *ratelimit.Limiter) []grpc.ServerOption {
	recoverUnary, recoverStream := interceptors.Recovery(o.logger, o.metrics.Panics)
	logUnary, logStream := interceptors.AccessLog(o.logger)

	unary := []grpc.UnaryServerInterceptor{
		v.DecodeGuard(),
		recoverUnary,
		o.metrics.GRPC.UnaryServerInterceptor(),
		logUnary,
		watch.InterceptUnary,
	}
	stream := []grpc.StreamServerInterceptor{
		recoverStream,
		o.metrics.GRPC.StreamServerInterceptor(),
		logStream,
		watch.InterceptStream,
	}
	if limiter != nil {
		unary = append(unary, limiter.UnaryServerInterceptor())
		stream = append(stream, limiter.StreamServerInterceptor())
	}
	unary = append(unary, v.UnaryServerInterceptor(), recoverUnary)
	unary = append(unary, o.unary...)
	stream = append(stream, v.StreamServerInterceptor(), recoverStream)
	stream = append(stream, o.stream...)
	return []grpc.ServerOption{
		v.Codec(),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
}
