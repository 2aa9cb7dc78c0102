package rpcerror_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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

func TestStatus(t *testing.T) {
	st := status.New(codes.NotFound, "gone")
	if got := rpcerror.Status(fmt.Errorf("call: %w", st.Err())); got == nil || got.Code() != codes.NotFound || got.Message() != "gone" {
		t.Errorf("Status(wrapped) = %v", got)
	}
	if got := rpcerror.Status(errors.New("local")); got != nil {
		t.Errorf("Status(local) = %v, want nil", got)
	}
}
