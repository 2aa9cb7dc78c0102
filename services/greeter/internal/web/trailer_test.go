package web_test

import (
	"context"
	"net"
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/services/greeter/internal/service"
	"github.com/acme/greeter/services/greeter/internal/web"
)

// TestStreamErrorTrailers: a stream that fails sends each trailer its
// handler set once, with the error, over Connect and gRPC-Web.
func TestStreamErrorTrailers(t *testing.T) {
	failing := func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, _ grpc.StreamHandler) error {
		ss.SetTrailer(metadata.Pairs("x-reason", "planted"))
		return status.Error(codes.FailedPrecondition, "planted")
	}
	cfg := testConfig(web.Service{Desc: &greeterv1.GreeterService_ServiceDesc, Impl: service.NewGreeter()})
	cfg.Stream = failing
	srv, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	url := "http://" + lis.Addr().String() + "/acme.greeter.v1.GreeterService/SayHelloStream"
	for name, opts := range map[string][]connect.ClientOption{
		"connect":  nil,
		"grpc-web": {connect.WithGRPCWeb()},
	} {
		t.Run(name, func(t *testing.T) {
			c := connect.NewClient[greeterv1.SayHelloStreamRequest, greeterv1.SayHelloStreamResponse](http.DefaultClient, url, opts...)
			s, err := c.CallServerStream(context.Background(), connect.NewRequest(&greeterv1.SayHelloStreamRequest{Name: "Ada", Count: 1}))
			if err != nil {
				t.Fatal(err)
			}
			for s.Receive() {
			}
			if got := connect.CodeOf(s.Err()); got != connect.CodeFailedPrecondition {
				t.Errorf("stream ended %v, want failed_precondition", s.Err())
			}
			if got := s.ResponseTrailer().Values("x-reason"); len(got) != 1 {
				t.Errorf("trailer x-reason = %q, want it once", got)
			}
			s.Close()
		})
	}
}
