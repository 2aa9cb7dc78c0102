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
