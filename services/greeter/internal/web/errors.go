package web

import (
	"context"
	"errors"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors in both directions: a connect-go error as the gRPC status the
// interceptors and handlers expect (grpcError), a gRPC status as the
// Connect error a client gets (connectError), and the HTTP status the
// Connect protocol gives a code (httpStatus).

// grpcError is a connect-go error as the gRPC status the interceptors and
// handlers expect.
func grpcError(err error) error {
	if ce := new(connect.Error); errors.As(err, &ce) {
		return status.Error(codes.Code(ce.Code()), ce.Message())
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}

// httpStatus is the HTTP status the Connect protocol gives code.
func httpStatus(code connect.Code) int {
	switch code {
	case connect.CodeInvalidArgument, connect.CodeUnknown:
		if code == connect.CodeUnknown {
			return http.StatusUnsupportedMediaType
		}
		return http.StatusBadRequest
	case connect.CodePermissionDenied:
		return http.StatusForbidden
	case connect.CodeResourceExhausted:
		return http.StatusTooManyRequests
	case connect.CodeUnimplemented:
		return http.StatusNotFound
	case connect.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// connectError is a gRPC status error as a Connect error, details included
// (RetryInfo, BadRequest).
func connectError(err error) *connect.Error {
	if ce := new(connect.Error); errors.As(err, &ce) {
		return ce
	}
	st := status.Convert(err)
	ce := connect.NewError(connect.Code(st.Code()), errors.New(st.Message()))
	for _, d := range st.Proto().GetDetails() {
		if detail, err := connect.NewErrorDetail(d); err == nil {
			ce.AddDetail(detail)
		}
	}
	return ce
}
