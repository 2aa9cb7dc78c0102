// Package exitcode maps the outcome of a greetctl command to its process
// exit status, so that scripts can tell a rejected request from an
// unreachable server without parsing messages.
package exitcode

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/greeter/clients/greetctl/internal/flagname"
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

// Status is one row of Table.
type Status struct {
	Code int
	// GRPC are the gRPC status codes of calls that exit with Code, in the
	// order Help lists them.
	GRPC []codes.Code
	// Help is the row's text in Help; a %s in it, which it has if and only
	// if GRPC is not empty, stands for GRPC.
	Help string
}

// Table is every exit status of greetctl, by code. ForCode and Help are
// both read from it, so the help cannot disagree with what greetctl does.
var Table = []Status{
	{OK, nil, "success"},
	{Failure, nil, "unexpected local failure"},
	{Usage, nil, "usage error (bad flags or arguments, malformed header, bad config)"},
	{Rejected, []codes.Code{codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition, codes.AlreadyExists, codes.NotFound},
		"request rejected (%s)"},
	{Unavailable, []codes.Code{codes.Unavailable}, "server unreachable or unavailable (%s; health not SERVING)"},
	{DeadlineExceeded, []codes.Code{codes.DeadlineExceeded}, "deadline exceeded (%s, see " + flagname.Timeout.String() + ")"},
	{Auth, []codes.Code{codes.Unauthenticated, codes.PermissionDenied}, "not allowed (%s)"},
	{ResourceExhausted, []codes.Code{codes.ResourceExhausted}, "resource exhausted (%s)"},
	{ServerError, []codes.Code{codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented, codes.Aborted},
		"server error (%s)"},
	{Interrupted, []codes.Code{codes.Canceled}, "interrupted (Ctrl-C, %s)"},
}

// helpWidth is where Help wraps its lines.
const helpWidth = 80

// Help is the "Exit status:" section of greetctl --help, one row of Table
// per status.
func Help() string {
	var b strings.Builder
	b.WriteString("Exit status:")
	for _, s := range Table {
		text := s.Help
		if len(s.GRPC) > 0 {
			names := make([]string, len(s.GRPC))
			for i, c := range s.GRPC {
				names[i] = c.String()
			}
			text = fmt.Sprintf(s.Help, strings.Join(names, ", "))
		}
		// Continuation lines line up with the text, after "  130  ".
		const indent = "\n       "
		line := fmt.Sprintf("\n  %-4d %s", s.Code, text)
		for len(line) > helpWidth+1 {
			cut := strings.LastIndexByte(line[:helpWidth+2], ' ')
			if cut < len(indent) {
				break // one word longer than a line
			}
			b.WriteString(line[:cut])
			line = indent + line[cut+1:]
		}
		b.WriteString(line)
	}
	return b.String()
}

// byGRPC is Table's GRPC column inverted.
var byGRPC = func() map[codes.Code]int {
	m := map[codes.Code]int{}
	for _, s := range Table {
		for _, c := range s.GRPC {
			m[c] = s.Code
		}
	}
	return m
}()

// ForCode returns the exit status of a call that ended with code, as
// Table says.
func ForCode(code codes.Code) int {
	if code == codes.OK {
		return OK
	}
	if exit, ok := byGRPC[code]; ok {
		return exit
	}
	// A code a future gRPC adds: the server, not the user, has to act.
	return ServerError
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
