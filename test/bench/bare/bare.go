// Package bare is the performance ceiling the greeter server is measured
// against: GreeterService and helloworld.Greeter on plain grpc-go, built
// from the same gen/go, with grpc.NewServer's defaults and nothing else — no
// interceptors, validation, health, metrics or logging. It answers like the
// real server for valid input and does no more work than that takes.
package bare

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/gen/go/helloworld"
)

// Register registers both contracts on s.
func Register(s *grpc.Server) {
	greeterv1.RegisterGreeterServiceServer(s, greeter{})
	helloworld.RegisterGreeterServer(s, classic{})
}

func hello(name string) string { return "Hello, " + strings.TrimSpace(name) + "!" }

type greeter struct {
	greeterv1.UnimplementedGreeterServiceServer
}

func (greeter) SayHello(_ context.Context, req *greeterv1.SayHelloRequest) (*greeterv1.SayHelloResponse, error) {
	return &greeterv1.SayHelloResponse{Message: hello(req.GetName())}, nil
}

func (greeter) SayHelloAgain(_ context.Context, req *greeterv1.SayHelloAgainRequest) (*greeterv1.SayHelloAgainResponse, error) {
	return &greeterv1.SayHelloAgainResponse{Message: "Hello again, " + strings.TrimSpace(req.GetName()) + "!"}, nil
}

// SayHelloStream honours interval as the contract says, so that a
// capacity run holds its streams as long on both servers.
func (greeter) SayHelloStream(req *greeterv1.SayHelloStreamRequest, stream grpc.ServerStreamingServer[greeterv1.SayHelloStreamResponse]) error {
	msg := hello(req.GetName())
	interval := req.GetInterval().AsDuration()
	for seq := int32(1); seq <= req.GetCount(); seq++ {
		if err := stream.Send(&greeterv1.SayHelloStreamResponse{Message: msg, Sequence: seq}); err != nil {
			return err
		}
		if interval > 0 && seq < req.GetCount() {
			select {
			case <-stream.Context().Done():
				return stream.Context().Err()
			case <-time.After(interval):
			}
		}
	}
	return nil
}

func (greeter) SayHelloToAll(stream grpc.ClientStreamingServer[greeterv1.SayHelloToAllRequest, greeterv1.SayHelloToAllResponse]) error {
	var first string
	var count int64
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if count == 0 {
			first = req.GetName()
		}
		count++
	}
	return stream.SendAndClose(&greeterv1.SayHelloToAllResponse{Message: hello(first), Count: count})
}

func (greeter) SayHelloChat(stream grpc.BidiStreamingServer[greeterv1.SayHelloChatRequest, greeterv1.SayHelloChatResponse]) error {
	for seq := int64(1); ; seq++ {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&greeterv1.SayHelloChatResponse{Message: hello(req.GetName()), Sequence: seq}); err != nil {
			return err
		}
	}
}

type classic struct {
	helloworld.UnimplementedGreeterServer
}

func (classic) SayHello(_ context.Context, req *helloworld.HelloRequest) (*helloworld.HelloReply, error) {
	return &helloworld.HelloReply{Message: hello(req.GetName())}, nil
}

func (classic) SayHelloAgain(_ context.Context, req *helloworld.HelloRequest) (*helloworld.HelloReply, error) {
	return &helloworld.HelloReply{Message: "Hello again, " + strings.TrimSpace(req.GetName()) + "!"}, nil
}
