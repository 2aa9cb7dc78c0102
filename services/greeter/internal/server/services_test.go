package server

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// TestServiceDescsAreRegistered: admission is told the methods of
// serviceDescs before the server exists; they must be the ones it serves.
func TestServiceDescsAreRegistered(t *testing.T) {
	sorted := func(info map[string]grpc.ServiceInfo) map[string]grpc.ServiceInfo {
		for name, s := range info {
			s.Methods = slices.SortedFunc(slices.Values(s.Methods), func(a, b grpc.MethodInfo) int { return strings.Compare(a.Name, b.Name) })
			info[name] = s
		}
		return info
	}
	for _, on := range []bool{true, false} {
		s, err := New(WithReflection(on))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := sorted(serviceInfo(serviceDescs(on))), sorted(s.grpc.GetServiceInfo()); !reflect.DeepEqual(got, want) {
			t.Errorf("reflection %v: serviceDescs' methods\n%v\nthe server's\n%v", on, got, want)
		}
	}
}

// inFlightTestService answers EmptyCall with nothing, noting how many RPCs
// admission counted in flight while it ran.
type inFlightTestService struct {
	testgrpc.UnimplementedTestServiceServer
	srv      *Server
	inFlight chan int
}

func (s *inFlightTestService) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	s.inFlight <- s.srv.admission.InFlight()
	return &testgrpc.Empty{}, nil
}

// TestWithService: a service added with WithService is served on both
// ports through the server's chain, its RPCs admitted (counted in flight)
// like the greeter's own.
func TestWithService(t *testing.T) {
	svc := &inFlightTestService{inFlight: make(chan int, 1)}
	h := startWeb(t, withOptions(WithService(&testgrpc.TestService_ServiceDesc, svc)))
	svc.srv = h.srv
	const method = "/grpc.testing.TestService/EmptyCall"

	if _, err := testgrpc.NewTestServiceClient(h.conn).EmptyCall(context.Background(), &testgrpc.Empty{}); err != nil {
		t.Fatalf("gRPC port: %v", err)
	}
	if n := <-svc.inFlight; n != 1 {
		t.Errorf("gRPC port: %d RPCs in flight during the call, want 1 (admission does not know the method?)", n)
	}
	client := connect.NewClient[testgrpc.Empty, testgrpc.Empty](httpClient(t, false, ""), h.base+method)
	if _, err := client.CallUnary(context.Background(), connect.NewRequest(&testgrpc.Empty{})); err != nil {
		t.Fatalf("HTTP port: %v", err)
	}
	if n := <-svc.inFlight; n != 1 {
		t.Errorf("HTTP port: %d RPCs in flight during the call, want 1", n)
	}
	if lines := h.logs.lines("grpc.method=EmptyCall", "grpc.code=OK"); len(lines) != 2 {
		t.Errorf("access log has %d OK lines for %s, want 2 (one per port):\n%s", len(lines), method, h.logs)
	}

	if _, err := New(WithService(nil, svc)); err == nil {
		t.Error("WithService(nil, impl) built a server")
	}
}
