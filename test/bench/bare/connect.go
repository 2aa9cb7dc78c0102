package bare

import (
	"context"
	"net/http"

	"connectrpc.com/connect"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
)

// ConnectHandler serves the greeter's HTTP-port benchmark methods
// (SayHello and SayHelloStream, and SayHelloToAll, whose request body the
// overload table's HTTP holders never send) on plain connect-go, with its
// defaults and nothing else: the ceiling the greeter's HTTP port
// (connect-go handlers with the gRPC port's interceptors) is measured
// against. connect-go answers Connect, gRPC and gRPC-Web on one handler.
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
	mux.Handle(greeterv1.GreeterService_SayHelloToAll_FullMethodName, connect.NewClientStreamHandler(greeterv1.GreeterService_SayHelloToAll_FullMethodName,
		func(_ context.Context, stream *connect.ClientStream[greeterv1.SayHelloToAllRequest]) (*connect.Response[greeterv1.SayHelloToAllResponse], error) {
			var first string
			var count int64
			for stream.Receive() {
				if count == 0 {
					first = stream.Msg().GetName()
				}
				count++
			}
			if err := stream.Err(); err != nil {
				return nil, err
			}
			return connect.NewResponse(&greeterv1.SayHelloToAllResponse{Message: hello(first), Count: count}), nil
		}))
	return mux
}
