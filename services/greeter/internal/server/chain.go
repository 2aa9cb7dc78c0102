package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"

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

// chainUnary runs own then added as one interceptor, outermost first, as
// grpc.ChainUnaryInterceptor does. Written here because grpc-go keeps its
// chaining unexported, and the HTTP port must run the very chain the gRPC
// port runs: both install this one.
//
// grpc-go's chaining makes a closure per interceptor per call, to carry
// the call's info and handler to the next interceptor. Between the
// server's own interceptors the steps are made once instead, and the
// call's info and handler ride in its context (unaryCall): one allocation
// a call rather than one per interceptor, on a path every unary call of
// both ports takes. A step finds them in the context it is given, so an
// interceptor of own must call the next with a context derived from its
// own, as each of the server's does; the interceptors added with
// WithUnaryInterceptors need not, and run chained as grpc-go chains them.
func chainUnary(own, added []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	next := func(ctx context.Context, req any) (any, error) {
		c, ok := ctx.Value(unaryCallKey{}).(*unaryCall)
		if !ok {
			return nil, errCallLost
		}
		if len(added) == 0 {
			return c.handler(ctx, req)
		}
		return added[0](ctx, req, c.info, unaryStep(added, 1, c.info, c.handler))
	}
	for i := len(own) - 1; i > 0; i-- {
		interceptor, then := own[i], next
		next = func(ctx context.Context, req any) (any, error) {
			c, ok := ctx.Value(unaryCallKey{}).(*unaryCall)
			if !ok {
				return nil, errCallLost
			}
			return interceptor(ctx, req, c.info, then)
		}
	}
	first := own[0]
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return first(&unaryCall{Context: ctx, info: info, handler: handler}, req, info, next)
	}
}

// unaryCall is a unary call's context as the chain of chainUnary gives it
// to its first interceptor: the call's own, carrying its info and handler.
type unaryCall struct {
	context.Context
	info    *grpc.UnaryServerInfo
	handler grpc.UnaryHandler
}

type unaryCallKey struct{}

func (c *unaryCall) Value(key any) any {
	if key == (unaryCallKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// errCallLost answers a call whose context an interceptor replaced by one
// not derived from it: a bug of that interceptor, which would also have
// lost the call's deadline and metadata.
var errCallLost = status.Error(codes.Internal, "greeter: an interceptor passed on a context not derived from the call's")

// unaryStep chains the interceptors of chain from i, grpc-go's way.
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
	stream = append(stream, v.StreamServerInterceptor(), recoverStream)
	stream = append(stream, o.stream...)
	return serverChain{codec: v.ServerCodec(), unary: chainUnary(unary, o.unary), stream: chainStream(stream)}
}
