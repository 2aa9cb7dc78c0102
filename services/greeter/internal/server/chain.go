package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"

	"github.com/acme/greeter/services/greeter/internal/admission"
	"github.com/acme/greeter/services/greeter/internal/interceptors"
	"github.com/acme/greeter/services/greeter/internal/ratelimit"
	"github.com/acme/greeter/services/greeter/internal/validate"
)

// serverChain is the server's interceptor chain, each kind as one
// interceptor, and the codec it needs: the gRPC port installs them as
// server options, the HTTP port (package web) calls them itself.
type serverChain struct {
	codec  encoding.CodecV2
	unary  grpc.UnaryServerInterceptor
	stream grpc.StreamServerInterceptor
}

// serverOptions are c as grpc.Server options.
func (c serverChain) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(c.codec),
		grpc.UnaryInterceptor(c.unary),
		grpc.StreamInterceptor(c.stream),
	}
}

// chainUnary runs chain as one interceptor, outermost first, as
// grpc.ChainUnaryInterceptor does. Written here because grpc-go keeps its
// chaining unexported, and the HTTP port must run the very chain the gRPC
// port runs: both install this one.
func chainUnary(chain []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	if len(chain) == 1 {
		return chain[0]
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return chain[0](ctx, req, info, unaryStep(chain, 1, info, handler))
	}
}

func unaryStep(chain []grpc.UnaryServerInterceptor, i int, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) grpc.UnaryHandler {
	if i == len(chain) {
		return handler
	}
	return func(ctx context.Context, req any) (any, error) {
		return chain[i](ctx, req, info, unaryStep(chain, i+1, info, handler))
	}
}

// chainStream is chainUnary for streams.
func chainStream(chain []grpc.StreamServerInterceptor) grpc.StreamServerInterceptor {
	if len(chain) == 1 {
		return chain[0]
	}
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return chain[0](srv, ss, info, streamStep(chain, 1, info, handler))
	}
}

func streamStep(chain []grpc.StreamServerInterceptor, i int, info *grpc.StreamServerInfo, handler grpc.StreamHandler) grpc.StreamHandler {
	if i == len(chain) {
		return handler
	}
	return func(srv any, ss grpc.ServerStream) error {
		return chain[i](srv, ss, info, streamStep(chain, i+1, info, handler))
	}
}

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
//  2. admission (package admission): the tap handle decides, before
//     grpc-go starts a handler, and marks a refused RPC, which this answers
//     at once, so that grpc-go ends its stream the ordinary way (its error
//     path from a tap handle keeps the stream's deadline timer alive);
//     refused RPCs are not access-logged, but counted and logged at a
//     bounded rate by package admission. For the others it notes a
//     stream's first request message and sends blocked by flow control,
//     for the reaper, and answers an RPC shed to free memory with why;
//  3. metrics, then the access log: they time and record every outcome,
//     including validation failures;
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
func interceptorChain(o *options, v *validate.Validator, watch *admission.Controller, limiter *ratelimit.Limiter) serverChain {
	recoverUnary, recoverStream := interceptors.Recovery(o.logger, o.metrics.Panics)
	logUnary, logStream := interceptors.AccessLog(o.logger)

	unary := []grpc.UnaryServerInterceptor{
		v.DecodeGuard(),
		recoverUnary,
		watch.InterceptUnary,
		o.metrics.GRPC.UnaryServerInterceptor(),
		logUnary,
	}
	stream := []grpc.StreamServerInterceptor{
		recoverStream,
		watch.InterceptStream,
		o.metrics.GRPC.StreamServerInterceptor(),
		logStream,
	}
	if limiter != nil {
		unary = append(unary, limiter.UnaryServerInterceptor())
		stream = append(stream, limiter.StreamServerInterceptor())
	}
	unary = append(unary, v.UnaryServerInterceptor(), recoverUnary)
	unary = append(unary, o.unary...)
	stream = append(stream, v.StreamServerInterceptor(), recoverStream)
	stream = append(stream, o.stream...)
	return serverChain{codec: v.ServerCodec(), unary: chainUnary(unary), stream: chainStream(stream)}
}
