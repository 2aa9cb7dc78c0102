package service

import (
	"context"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/gen/go/helloworld"
	"google.golang.org/protobuf/proto"

	"github.com/acme/greeter/services/greeter/internal/greeting"
)

// Checker validates a message and returns a gRPC status error; see
// validate.Validator.Check.
type Checker interface {
	Check(msg proto.Message) error
}

// Helloworld implements the frozen tutorial contract helloworld.Greeter
// with the same greetings and the same validation as GreeterService.
type Helloworld struct {
	helloworld.UnimplementedGreeterServer
	check Checker
}

// NewHelloworld returns the helloworld.Greeter implementation. check
// enforces the GreeterService name rules, which helloworld's own messages do
// not declare.
func NewHelloworld(check Checker) *Helloworld {
	return &Helloworld{check: check}
}

// SayHello greets one person.
func (h *Helloworld) SayHello(_ context.Context, req *helloworld.HelloRequest) (*helloworld.HelloReply, error) {
	// Validating the equivalent GreeterService request applies the same
	// rules and reports the same field path ("name") and rule ids.
	if err := h.check.Check(&greeterv1.SayHelloRequest{Name: req.GetName()}); err != nil {
		return nil, err
	}
	return &helloworld.HelloReply{Message: greeting.Hello(req.GetName())}, nil
}

// SayHelloAgain greets one person again.
func (h *Helloworld) SayHelloAgain(_ context.Context, req *helloworld.HelloRequest) (*helloworld.HelloReply, error) {
	if err := h.check.Check(&greeterv1.SayHelloAgainRequest{Name: req.GetName()}); err != nil {
		return nil, err
	}
	return &helloworld.HelloReply{Message: greeting.HelloAgain(req.GetName())}, nil
}
