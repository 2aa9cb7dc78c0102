package service

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// namesStream is a client stream of n copies of one name, with no transport.
type namesStream struct {
	grpc.ServerStream // unused methods; calling one panics
	left              int
	reply             *greeterv1.SayHelloToAllResponse
}

func (s *namesStream) Context() context.Context { return context.Background() }

func (s *namesStream) RecvMsg(m any) error {
	if s.left == 0 {
		return io.EOF
	}
	s.left--
	m.(*greeterv1.SayHelloToAllRequest).Name = "Ada"
	return nil
}

func (s *namesStream) Recv() (*greeterv1.SayHelloToAllRequest, error) {
	req := new(greeterv1.SayHelloToAllRequest)
	return req, s.RecvMsg(req)
}

func (s *namesStream) SendAndClose(r *greeterv1.SayHelloToAllResponse) error {
	s.reply = r
	return nil
}

// TestSayHelloToAllConstantMemory shows that the handler's allocations do
// not depend on how many names arrive: a million names cost what ten do.
func TestSayHelloToAllConstantMemory(t *testing.T) {
	g := NewGreeter()
	allocs := func(n int) float64 {
		return testing.AllocsPerRun(3, func() {
			s := &namesStream{left: n}
			if err := g.SayHelloToAll(s); err != nil {
				t.Fatal(err)
			}
			if s.reply.GetCount() != int64(n) {
				t.Fatalf("count %d, want %d", s.reply.GetCount(), n)
			}
		})
	}
	small, large := allocs(10), allocs(1_000_000)
	if large != small {
		t.Fatalf("10 names: %v allocs; 1,000,000 names: %v allocs; want equal", small, large)
	}
}

type fakeChecker struct{ got proto.Message }

func (f *fakeChecker) Check(m proto.Message) error { f.got = m; return nil }

// TestHelloworldValidatesAsGreeterService checks the classic contract is
// validated through the GreeterService request types, hence their rules.
func TestHelloworldValidatesAsGreeterService(t *testing.T) {
	var fc fakeChecker
	h := NewHelloworld(&fc)
	if _, err := h.SayHello(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := fc.got.(*greeterv1.SayHelloRequest); !ok {
		t.Errorf("SayHello validated %T", fc.got)
	}
	if _, err := h.SayHelloAgain(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := fc.got.(*greeterv1.SayHelloAgainRequest); !ok {
		t.Errorf("SayHelloAgain validated %T", fc.got)
	}
}

// TestEndedBy: a handler whose context is done returns the status the
// server ended it with, or the context's own.
func TestEndedBy(t *testing.T) {
	shed := status.Error(codes.ResourceExhausted, "shed")
	for _, tc := range []struct {
		name string
		end  func(context.Context) (context.Context, func())
		want codes.Code
	}{
		{"cancelled by the client", func(ctx context.Context) (context.Context, func()) {
			ctx, cancel := context.WithCancel(ctx)
			return ctx, cancel
		}, codes.Canceled},
		{"past its deadline", func(ctx context.Context) (context.Context, func()) {
			return context.WithTimeout(ctx, -time.Second)
		}, codes.DeadlineExceeded},
		{"ended by the server with a status", func(ctx context.Context) (context.Context, func()) {
			ctx, cancel := context.WithCancelCause(ctx)
			return ctx, func() { cancel(shed) }
		}, codes.ResourceExhausted},
		{"ended by the server with a plain error", func(ctx context.Context) (context.Context, func()) {
			ctx, cancel := context.WithCancelCause(ctx)
			return ctx, func() { cancel(errors.New("first message late")) }
		}, codes.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, end := tc.end(context.Background())
			end()
			// A child, as grpc-go derives the stream's context.
			child, cancel := context.WithCancel(ctx)
			defer cancel()
			if got := status.Code(endedBy(child)); got != tc.want {
				t.Errorf("endedBy = %v, want %v", got, tc.want)
			}
		})
	}
}
