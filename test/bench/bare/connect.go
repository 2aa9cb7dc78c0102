package bare

import (
	"context"
	"net/http"

	"connectrpc.com/connect"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
)

// ConnectHandler serves the greeter's HTTP-port benchmark methods
// (SayHello and SayHelloStream) on plain connect-go, with its defaults and
// nothing else: the ceiling the greeter's HTTP port (connect-go handlers
// with the gRPC port's interceptors) is measured against. connect-go answers Connect, gRPC and
// gRPC-Web on one handler.
func ConnectHandler() http.Handler {
	mux := http.NewServeMux()
	g := greeter{}
	mux.Handle("/acme.greeter.v1.GreeterService/SayHello", connect.NewUnaryHandler("/acme.greeter.v1.GreeterService/SayHello",
		func(ctx context.Context, req *connect.Request[greeterv1.SayHelloRequest]) (*connect.Response[greeterv1.SayHelloResponse], error) {
			res, err := g.SayHello(ctx, req.Msg)
			if err != nil {
				return nil, err
			}
			return connect.NewResponse(res), nil
		}, connect.WithIdempotency(connect.IdempotencyNoSideEffects)))
	mux.Handle("/acme.greeter.v1.GreeterService/SayHelloStream", connect.NewServerStreamHandler("/acme.greeter.v1.GreeterService/SayHelloStream",
		func(_ context.Context, req *connect.Request[greeterv1.SayHelloStreamRequest], stream *connect.ServerStream[greeterv1.SayHelloStreamResponse]) error {
			msg := hello(req.Msg.GetName())
			for seq := int32(1); seq <= req.Msg.GetCount(); seq++ {
				if err := stream.Send(&greeterv1.SayHelloStreamResponse{Message: msg, Sequence: seq}); err != nil {
					return err
				}
			}
			return nil
		}))
	return mux
}
