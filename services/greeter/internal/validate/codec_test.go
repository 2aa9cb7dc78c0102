package validate

import (
	"context"
	"testing"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// TestDecodeErrorsDoNotLeak checks the codec/interceptor hand-off: a
// request that does not decode is recorded, answered INVALID_ARGUMENT by
// the interceptor, and forgotten; a request that decodes is never recorded.
func TestDecodeErrorsDoNotLeak(t *testing.T) {
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	c := v.Codec()
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
			n := 0
			v.decodeFailures.Range(func(any, any) bool { n++; return true })
			if n != 0 {
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

// TestDecodeGuard: behind UnaryDecodeGuard, a call that an interceptor
// ends before validation (the rate limit) leaves no record, and one that
// reaches validation is INVALID_ARGUMENT.
func TestDecodeGuard(t *testing.T) {
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	guard, validation := v.UnaryDecodeGuard(), v.UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{}
	limited := status.Error(codes.ResourceExhausted, "rate limited")
	pending := func() int {
		n := 0
		v.decodeFailures.Range(func(any, any) bool { n++; return true })
		return n
	}
	for range 100 {
		req := &greeterv1.SayHelloRequest{}
		if err := v.Codec().Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0x0a, 0x01, 0xff})}, req); err != nil {
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
	if err := v.Codec().Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0x0a, 0x01, 0xff})}, req); err != nil {
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
