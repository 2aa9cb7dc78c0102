package validate

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/services/greeter/internal/testconn"
)

// TestDecodeErrorsDoNotLeak checks the codec/interceptor hand-off: a
// request that does not decode is recorded, answered INVALID_ARGUMENT by
// the interceptor, and forgotten; a request that decodes is never recorded.
func TestDecodeErrorsDoNotLeak(t *testing.T) {
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	c := v.serverCodec()
	if c.Name() != "proto" {
		t.Fatalf("codec name %q", c.Name())
	}
	interceptor := v.UnaryServerInterceptor()
	called := false
	handler := func(context.Context, any) (any, error) { called = true; return nil, nil }
	for _, tt := range []struct {
		desc string
		data []byte
		code codes.Code
	}{
		{"valid", []byte{0x0a, 0x03, 'A', 'd', 'a'}, codes.OK},
		{"invalid UTF-8", []byte{0x0a, 0x02, 0xff, 0xfe}, codes.InvalidArgument},
		{"truncated", []byte{0x0a, 0x09, 'A'}, codes.InvalidArgument},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			called = false
			req := &greeterv1.SayHelloRequest{Name: "stale"}
			if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(tt.data)}, req); err != nil {
				t.Fatalf("Unmarshal returned %v: grpc-go would answer INTERNAL", err)
			}
			if tt.code != codes.OK && req.GetName() != "" {
				t.Errorf("undecodable request not reset: %q", req.GetName())
			}
			_, err := interceptor(t.Context(), req, &grpc.UnaryServerInfo{}, handler)
			if got := status.Code(err); got != tt.code {
				t.Fatalf("code %v (%v), want %v", got, err, tt.code)
			}
			if called != (tt.code == codes.OK) {
				t.Errorf("handler called = %v", called)
			}
			if n := v.decodeFailures.len(t); n != 0 {
				t.Fatalf("%d decode failures left recorded", n)
			}
		})
	}
	// Marshal is the stock codec's.
	got, err := c.Marshal(&greeterv1.SayHelloResponse{Message: "Hello, Ada!"})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := proto.Marshal(&greeterv1.SayHelloResponse{Message: "Hello, Ada!"})
	if string(got.Materialize()) != string(want) {
		t.Errorf("Marshal differs from proto.Marshal")
	}
}

// TestDecodeGuard: behind the decode guard, a call that an interceptor
// ends before validation (the rate limit) leaves no record, and one that
// reaches validation is INVALID_ARGUMENT.
func TestDecodeGuard(t *testing.T) {
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	guard, validation := v.DecodeGuard(), v.UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{}
	limited := status.Error(codes.ResourceExhausted, "rate limited")
	pending := func() int { return v.decodeFailures.len(t) }
	for range 100 {
		req := &greeterv1.SayHelloRequest{}
		if err := v.serverCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0x0a, 0x01, 0xff})}, req); err != nil {
			t.Fatal(err)
		}
		_, err := guard(t.Context(), req, info, func(context.Context, any) (any, error) { return nil, limited })
		if err != limited {
			t.Fatalf("short-circuited call: %v", err)
		}
	}
	if n := pending(); n != 0 {
		t.Fatalf("%d decode failures left behind by calls that ended before validation", n)
	}
	req := &greeterv1.SayHelloRequest{}
	if err := v.serverCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0x0a, 0x01, 0xff})}, req); err != nil {
		t.Fatal(err)
	}
	_, err = guard(t.Context(), req, info, func(ctx context.Context, req any) (any, error) {
		return validation(ctx, req, info, func(context.Context, any) (any, error) {
			t.Fatal("the handler saw an undecodable request")
			return nil, nil
		})
	})
	if status.Code(err) != codes.InvalidArgument || pending() != 0 {
		t.Fatalf("through the guard and validation: %v, %d pending", err, pending())
	}
}

func TestDiagnose(t *testing.T) {
	md := (&greeterv1.SayHelloStreamRequest{}).ProtoReflect().Descriptor()
	for _, tt := range []struct {
		desc          string
		data          []byte
		field, reason string
	}{
		{"bad UTF-8 name", []byte{0x0a, 0x01, 0x80}, "name", ReasonInvalidUTF8},
		{"name cut short", []byte{0x0a, 0x05, 'A'}, "name", ReasonMalformed},
		{"count varint cut short", []byte{0x10, 0x80}, "count", ReasonMalformed},
		{"interval cut short inside", []byte{0x1a, 0x01, 0x08}, "interval.seconds", ReasonMalformed},
		{"bad tag", []byte{0x00}, "", ReasonMalformed},
		{"unknown field cut short", []byte{0xa2, 0x06, 0x05}, "", ReasonMalformed},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			if proto.Unmarshal(tt.data, &greeterv1.SayHelloStreamRequest{}) == nil {
				t.Fatal("the input decodes; the case is wrong")
			}
			field, reason := diagnose(tt.data, md)
			if field != tt.field || reason != tt.reason {
				t.Errorf("diagnose = %q, %q; want %q, %q", field, reason, tt.field, tt.reason)
			}
		})
	}
}

// rawCodec puts bytes on the wire as they are, as a buggy client would.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// recordingGreeter is a GreeterService whose handlers note each request
// that reaches them.
type recordingGreeter struct {
	greeterv1.UnimplementedGreeterServiceServer
	seen chan<- string
}

func (g recordingGreeter) SayHello(_ context.Context, req *greeterv1.SayHelloRequest) (*greeterv1.SayHelloResponse, error) {
	g.seen <- "handler " + req.GetName()
	return &greeterv1.SayHelloResponse{}, nil
}

func (g recordingGreeter) SayHelloToAll(stream grpc.ClientStreamingServer[greeterv1.SayHelloToAllRequest, greeterv1.SayHelloToAllResponse]) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&greeterv1.SayHelloToAllResponse{})
		}
		if err != nil {
			return err
		}
		g.seen <- "handler " + req.GetName()
	}
}

// TestServerOptions serves through the codec, the decode guard and the
// validation interceptors alone, around an outer and an inner interceptor
// (TestInterceptorOrder, package server, pins the server's own): a request that does
// not decode is INVALID_ARGUMENT, seen by the outer interceptors with that
// result and by neither the inner ones nor the handler, and leaves no
// record; a request that decodes goes outer, inner, handler.
func TestServerOptions(t *testing.T) {
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 100)
	unary := func(name string) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			seen <- name
			resp, err := handler(ctx, req)
			seen <- name + " " + status.Code(err).String()
			return resp, err
		}
	}
	stream := func(name string) grpc.StreamServerInterceptor {
		return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			seen <- name
			err := handler(srv, ss)
			seen <- name + " " + status.Code(err).String()
			return err
		}
	}
	// The chain as package server composes it: decode guard outermost,
	// validation between the outer and the inner interceptors.
	srv := grpc.NewServer(v.Codec(),
		grpc.ChainUnaryInterceptor(v.DecodeGuard(), unary("outer"), v.UnaryServerInterceptor(), unary("inner")),
		grpc.ChainStreamInterceptor(stream("outer"), v.StreamServerInterceptor(), stream("inner")))
	greeterv1.RegisterGreeterServiceServer(srv, recordingGreeter{seen: seen})
	lis := testconn.Listen()
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := lis.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })

	ada, undecodable := []byte{0x0a, 0x03, 'A', 'd', 'a'}, []byte{0x0a, 0x02, 0xff, 0xfe}
	tests := []struct {
		desc   string
		method string
		msgs   [][]byte
		code   codes.Code
		want   []string
	}{
		{"unary, decodes", "SayHello", [][]byte{ada}, codes.OK,
			[]string{"outer", "inner", "handler Ada", "inner OK", "outer OK"}},
		{"unary, does not decode", "SayHello", [][]byte{undecodable}, codes.InvalidArgument,
			[]string{"outer", "outer InvalidArgument"}},
		{"stream, decodes", "SayHelloToAll", [][]byte{ada, ada}, codes.OK,
			[]string{"outer", "inner", "handler Ada", "handler Ada", "inner OK", "outer OK"}},
		{"stream, second message does not decode", "SayHelloToAll", [][]byte{ada, undecodable, ada}, codes.InvalidArgument,
			[]string{"outer", "inner", "handler Ada", "inner InvalidArgument", "outer InvalidArgument"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			desc := &grpc.StreamDesc{ClientStreams: true}
			s, err := conn.NewStream(t.Context(), desc, "/acme.greeter.v1.GreeterService/"+tt.method, grpc.ForceCodec(rawCodec{}))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tt.msgs {
				if err := s.SendMsg(&m); err != nil {
					break // the server ended the call; RecvMsg has its status
				}
			}
			_ = s.CloseSend()
			var reply []byte
			err = s.RecvMsg(&reply)
			if status.Code(err) != tt.code {
				t.Fatalf("code %v (%v), want %v", status.Code(err), err, tt.code)
			}
			var got []string
			for range tt.want {
				select {
				case call := <-seen:
					got = append(got, call)
				case <-time.After(10 * time.Second):
					t.Fatalf("calls %q, want %q", got, tt.want)
				}
			}
			if strings.Join(got, ", ") != strings.Join(tt.want, ", ") || len(seen) != 0 {
				t.Errorf("calls %q (and %d more), want %q", got, len(seen), tt.want)
			}
			if n := v.decodeFailures.len(t); n != 0 {
				t.Errorf("%d decode failures left recorded", n)
			}
		})
	}
}

// len is the number of records, which must agree with the count that
// lets take skip the lookup.
func (f *decodeFailures) len(t *testing.T) int {
	t.Helper()
	n := 0
	f.m.Range(func(any, any) bool { n++; return true })
	if c := f.n.Load(); c != int64(n) {
		t.Fatalf("%d decode failures recorded, but counted %d", n, c)
	}
	return n
}
