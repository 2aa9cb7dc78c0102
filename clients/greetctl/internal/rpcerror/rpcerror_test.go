package rpcerror_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/acme/greeter/clients/greetctl/internal/rpcerror"
)

func TestWrite(t *testing.T) {
	known, err := anypb.New(durationpb.New(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	quota, err := anypb.New(&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: "client:ada", Description: "100 calls a minute"}}})
	if err != nil {
		t.Fatal(err)
	}
	st := status.FromProto(&spb.Status{
		Code:    int32(codes.ResourceExhausted),
		Message: "slow down",
		Details: []*anypb.Any{
			quota,
			known, // A message that is not an error detail.
			{TypeUrl: "type.googleapis.com/acme.Secret", Value: []byte{1, 2, 3}},
		},
	})
	var b strings.Builder
	if err := rpcerror.Write(&b, "greetctl hello", st); err != nil {
		t.Fatal(err)
	}
	want := `greetctl hello: ResourceExhausted: slow down
  quota client:ada: 100 calls a minute
  google.protobuf.Duration: "2s"
  detail type.googleapis.com/acme.Secret (3 bytes, unknown to greetctl)
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteViolations(t *testing.T) {
	field := func(name string) *validatepb.FieldPathElement {
		return &validatepb.FieldPathElement{FieldName: proto.String(name)}
	}
	indexed := field("names")
	indexed.Subscript = &validatepb.FieldPathElement_Index{Index: 2}
	keyed := field("labels")
	keyed.Subscript = &validatepb.FieldPathElement_StringKey{StringKey: "env"}
	violations := &validatepb.Violations{Violations: []*validatepb.Violation{
		{Field: &validatepb.FieldPath{Elements: []*validatepb.FieldPathElement{field("name")}}, RuleId: proto.String("name.not_blank"), Message: proto.String("must not be blank")},
		{Field: &validatepb.FieldPath{Elements: []*validatepb.FieldPathElement{indexed}}, Message: proto.String("too long")},
		{Field: &validatepb.FieldPath{Elements: []*validatepb.FieldPathElement{keyed, field("value")}}, Message: proto.String("empty")},
	}}
	badRequest := &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: "name", Description: "must not be blank", Reason: "name.not_blank"},
	}}
	st, err := status.New(codes.InvalidArgument, "invalid").WithDetails(badRequest, violations)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := rpcerror.Write(&b, "greetctl hello-all", st); err != nil {
		t.Fatal(err)
	}
	// The first violation repeats the BadRequest line: printed once.
	want := `greetctl hello-all: InvalidArgument: invalid
  name: must not be blank [name.not_blank]
  names[2]: too long
  labels["env"].value: empty
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestStatus(t *testing.T) {
	st := status.New(codes.NotFound, "gone")
	if got := rpcerror.Status(fmt.Errorf("call: %w", st.Err())); got == nil || got.Code() != codes.NotFound || got.Message() != "gone" {
		t.Errorf("Status(wrapped) = %v", got)
	}
	if got := rpcerror.Status(errors.New("local")); got != nil {
		t.Errorf("Status(local) = %v, want nil", got)
	}
}
