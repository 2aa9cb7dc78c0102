// Package exitcode maps the outcome of a greetctl command to its process
// exit status, so that scripts can tell a rejected request from an
// unreachable server without parsing messages.
package exitcode

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The exit statuses of greetctl. Each gRPC status class has its own, see
// ForCode.
const (
	// OK means the command succeeded.
	OK = 0
	// Failure is an unexpected local failure: a file that cannot be read, a
	// broken pipe, a bug.
	Failure = 1
	// Usage is a bad command line: unknown flag, wrong arguments, malformed
	// header, invalid config file.
	Usage = 2
	// Rejected means the server rejected the request: InvalidArgument,
	// OutOfRange, FailedPrecondition, AlreadyExists, NotFound.
	Rejected = 3
	// Unavailable means the server could not be reached or is unavailable,
	// or a health check did not report SERVING.
	Unavailable = 4
	// DeadlineExceeded means the call did not finish within --timeout.
	DeadlineExceeded = 5
	// Auth means the server refused the caller: Unauthenticated,
	// PermissionDenied.
	Auth = 6
	// ResourceExhausted means the server or the client ran out of a
	// resource, a quota or a rate limit.
	ResourceExhausted = 7
	// ServerError means the server failed: Internal, Unknown, DataLoss,
	// Unimplemented, Aborted.
	ServerError = 8
	// Interrupted means the user interrupted the command (Ctrl-C) or the
	// call was canceled.
	Interrupted = 130
)

// Table documents the exit statuses for --help and the README.
const Table = `Exit status:
  0    success
  1    unexpected local failure
  2    usage error (bad flags or arguments, malformed header, bad config)
  3    request rejected (InvalidArgument, OutOfRange, FailedPrecondition,
       AlreadyExists, NotFound)
  4    server unreachable or unavailable (Unavailable; health not SERVING)
  5    deadline exceeded (DeadlineExceeded, see --timeout)
  6    not allowed (Unauthenticated, PermissionDenied)
  7    resource exhausted (ResourceExhausted)
  8    server error (Internal, Unknown, DataLoss, Unimplemented, Aborted)
  130  interrupted (Ctrl-C, Canceled)`

// ForCode returns the exit status of a call that ended with code.
func ForCode(code codes.Code) int {
	switch code {
	case codes.OK:
		return OK
	case codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition,
		codes.AlreadyExists, codes.NotFound:
		return Rejected
	case codes.Unavailable:
		return Unavailable
	case codes.DeadlineExceeded:
		return DeadlineExceeded
	case codes.Unauthenticated, codes.PermissionDenied:
		return Auth
	case codes.ResourceExhausted:
		return ResourceExhausted
	case codes.Canceled:
		return Interrupted
	default:
		// Internal, Unknown, DataLoss, Unimplemented, Aborted and any code
		// a future gRPC adds: the server, not the user, has to act.
		return ServerError
	}
}

// Error carries the exit status a command chose for its error, e.g. Usage
// for a malformed flag value or Unavailable for a health check that did not
// report SERVING.
type Error struct {
	Code int
	Err  error
}

// New returns an error that exits with code.
func New(code int, err error) error {
	return &Error{Code: code, Err: err}
}

// Usagef returns a usage error (exit status 2) formatted like fmt.Errorf.
func Usagef(format string, args ...any) error {
	return &Error{Code: Usage, Err: fmt.Errorf(format, args...)}
}

// Error implements error.
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// IsUsage reports whether err is a usage error.
func IsUsage(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == Usage
}

// FromError returns the exit status for err: nil is OK, an *Error its own
// code, a gRPC status its class (see ForCode), a canceled context
// Interrupted, and anything else Failure.
func FromError(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	// A context error can reach us unwrapped when it happens outside a call,
	// e.g. while waiting for stdin; check it before the status so that
	// Canceled is not reported as Unknown.
	switch {
	case errors.Is(err, context.Canceled):
		return Interrupted
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	}
	if st, ok := status.FromError(err); ok {
		return ForCode(st.Code())
	}
	return Failure
}
