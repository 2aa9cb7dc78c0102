// Package service implements the greeter's gRPC contracts on top of package
// greeting: acme.greeter.v1.GreeterService and the classic
// helloworld.Greeter.
//
// GreeterService handlers trust that requests were validated by the
// validation interceptor (package validate), which is always installed by
// package server. helloworld messages carry no rules, so the Helloworld
// handlers validate explicitly against the GreeterService rules.
package service

import (
	"context"
	"errors"
	"io"
	"time"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/greeter/services/greeter/internal/greeting"
)

// Greeter implements greeterv1.GreeterServiceServer.
type Greeter struct {
	greeterv1.UnimplementedGreeterServiceServer
}

// NewGreeter returns the GreeterService implementation.
func NewGreeter() *Greeter { return &Greeter{} }

// SayHello greets one person.
func (*Greeter) SayHello(_ context.Context, req *greeterv1.SayHelloRequest) (*greeterv1.SayHelloResponse, error) {
	return &greeterv1.SayHelloResponse{Message: greeting.Hello(req.GetName())}, nil
}

// SayHelloAgain greets one person again.
func (*Greeter) SayHelloAgain(_ context.Context, req *greeterv1.SayHelloAgainRequest) (*greeterv1.SayHelloAgainResponse, error) {
	return &greeterv1.SayHelloAgainResponse{Message: greeting.HelloAgain(req.GetName())}, nil
}

// SayHelloStream sends count greetings, interval apart. Send blocks while
// the client is not reading (HTTP/2 flow control), so nothing is buffered
// beyond one message; cancellation and the deadline are checked before
// every send and during every wait.
func (*Greeter) SayHelloStream(req *greeterv1.SayHelloStreamRequest, stream grpc.ServerStreamingServer[greeterv1.SayHelloStreamResponse]) error {
	ctx := stream.Context()
	msg := greeting.Hello(req.GetName())
	interval := req.GetInterval().AsDuration()
	var timer *time.Timer
	if interval > 0 {
		// One timer for the whole call rather than one per greeting; Stop
		// releases it however the call ends.
		timer = time.NewTimer(interval)
		timer.Stop()
		defer timer.Stop()
	}
	for seq := int32(1); seq <= req.GetCount(); seq++ {
		if ctx.Err() != nil {
			return endedBy(ctx)
		}
		// A fresh message per Send: gRPC may hold on to a sent message
		// (stats handlers, tracing), so it must not be reused.
		if err := stream.Send(&greeterv1.SayHelloStreamResponse{Message: msg, Sequence: seq}); err != nil {
			return err
		}
		if timer == nil || seq == req.GetCount() {
			continue
		}
		timer.Reset(interval)
		select {
		case <-ctx.Done():
			return endedBy(ctx)
		case <-timer.C:
		}
	}
	return nil
}

// SayHelloToAll reads names until the client half-closes and greets them
// all at once. It keeps only what the greeting needs (greeting.Crowd), so
// memory stays constant however long the stream.
func (*Greeter) SayHelloToAll(stream grpc.ClientStreamingServer[greeterv1.SayHelloToAllRequest, greeterv1.SayHelloToAllResponse]) error {
	var crowd greeting.Crowd
	var req greeterv1.SayHelloToAllRequest
	for {
		// Reusing one request message avoids an allocation per name; Crowd
		// copies out the (immutable) name string it keeps.
		req.Reset()
		err := stream.RecvMsg(&req)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		crowd.Add(req.GetName())
	}
	if crowd.Count() == 0 {
		return status.Error(codes.InvalidArgument, "SayHelloToAll needs at least one name before the client half-closes")
	}
	return stream.SendAndClose(&greeterv1.SayHelloToAllResponse{Message: crowd.Greeting(), Count: crowd.Count()})
}

// SayHelloChat answers each name as soon as it arrives, in order, until the
// client half-closes.
func (*Greeter) SayHelloChat(stream grpc.BidiStreamingServer[greeterv1.SayHelloChatRequest, greeterv1.SayHelloChatResponse]) error {
	for seq := int64(1); ; seq++ {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&greeterv1.SayHelloChatResponse{Message: greeting.Hello(req.GetName()), Sequence: seq}); err != nil {
			return err
		}
	}
}

// endedBy is the status of an RPC whose context is done: the cause, when
// the server ended it with a gRPC status (admission sheds RPCs with
// RESOURCE_EXHAUSTED), so that the metrics and the access log record what
// the client is told; else CANCELLED or DEADLINE_EXCEEDED.
func endedBy(ctx context.Context) error {
	if st, ok := status.FromError(context.Cause(ctx)); ok && st.Code() != codes.Unknown {
		return st.Err()
	}
	return status.FromContextError(ctx.Err()).Err()
}
