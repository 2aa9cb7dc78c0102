package exitcode_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/greeter/clients/greetctl/internal/exitcode"
)

func TestFromError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, exitcode.OK},
		{"local", errors.New("disk on fire"), exitcode.Failure},
		{"usage", exitcode.Usagef("bad flag"), exitcode.Usage},
		{"wrapped usage", fmt.Errorf("x: %w", exitcode.Usagef("bad flag")), exitcode.Usage},
		{"explicit", exitcode.New(exitcode.Unavailable, errors.New("not serving")), exitcode.Unavailable},
		{"canceled context", context.Canceled, exitcode.Interrupted},
		{"expired context", fmt.Errorf("read: %w", context.DeadlineExceeded), exitcode.DeadlineExceeded},
		{"status", status.Error(codes.NotFound, "x"), exitcode.Rejected},
		{"wrapped status", fmt.Errorf("call: %w", status.Error(codes.PermissionDenied, "x")), exitcode.Auth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitcode.FromError(tt.err); got != tt.want {
				t.Errorf("FromError(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

// TestForCodeCoversEveryCode pins the class of every gRPC code.
func TestForCodeCoversEveryCode(t *testing.T) {
	want := map[codes.Code]int{
		codes.OK:                 exitcode.OK,
		codes.Canceled:           exitcode.Interrupted,
		codes.Unknown:            exitcode.ServerError,
		codes.InvalidArgument:    exitcode.Rejected,
		codes.DeadlineExceeded:   exitcode.DeadlineExceeded,
		codes.NotFound:           exitcode.Rejected,
		codes.AlreadyExists:      exitcode.Rejected,
		codes.PermissionDenied:   exitcode.Auth,
		codes.ResourceExhausted:  exitcode.ResourceExhausted,
		codes.FailedPrecondition: exitcode.Rejected,
		codes.Aborted:            exitcode.ServerError,
		codes.OutOfRange:         exitcode.Rejected,
		codes.Unimplemented:      exitcode.ServerError,
		codes.Internal:           exitcode.ServerError,
		codes.Unavailable:        exitcode.Unavailable,
		codes.DataLoss:           exitcode.ServerError,
		codes.Unauthenticated:    exitcode.Auth,
	}
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if got := exitcode.ForCode(c); got != want[c] {
			t.Errorf("ForCode(%s) = %d, want %d", c, got, want[c])
		}
	}
}
