// Package validate enforces the protovalidate rules annotated in the API
// contract and reports violations the way gRPC clients expect: status
// INVALID_ARGUMENT with a google.rpc.BadRequest detail.
package validate

import (
	"context"
	"errors"
	"fmt"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Validator checks messages against their protovalidate rules. Build one per
// process: protovalidate compiles and caches each message type's rules, so
// a shared Validator pays that cost once.
type Validator struct {
	v protovalidate.Validator
	// native vouches for the messages that pass, without protovalidate's
	// CEL programs (see native.go).
	native nativeRules
	// decodeFailures holds requests that did not decode, from Codec until
	// the interceptor that sees them next (see codec.go).
	decodeFailures decodeFailures
}

// New builds a Validator.
//
// The name rules are the predefined rule acme.greeter.v1.person_name, an
// extension that protovalidate looks up in the global registry: the
// generated package registers it, and every request type links that
// package. Were it missing, Check would answer INTERNAL (protovalidate
// refuses unknown rules) rather than let names through unchecked.
func New() (*Validator, error) {
	v, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("build protovalidate validator: %w", err)
	}
	return &Validator{v: v}, nil
}

// Check validates msg and returns nil or a gRPC status error: INVALID_ARGUMENT
// with a BadRequest detail for rule violations, INTERNAL when the rules
// themselves cannot be evaluated (a bug in the contract, not the caller).
//
// Requests that certainly pass are recognised natively (native.go); every
// other is protovalidate's to judge, so every violation is protovalidate's.
func (v *Validator) Check(msg proto.Message) error {
	return v.check(nil, msg)
}

// check is Check, with the fast path's plan cached in c (which may be nil).
func (v *Validator) check(c *planCache, msg proto.Message) error {
	if v.native.passesWith(c, msg) {
		return nil
	}
	err := v.v.Validate(msg)
	if err == nil {
		return nil
	}
	return toStatus(err)
}

func toStatus(err error) error {
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		return status.Errorf(codes.Internal, "validate request: %v", err)
	}
	br := &errdetails.BadRequest{
		FieldViolations: make([]*errdetails.BadRequest_FieldViolation, 0, len(verr.Violations)),
	}
	for _, v := range verr.Violations {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field:       protovalidate.FieldPathString(v.Proto.GetField()),
			Description: v.Proto.GetMessage(),
			// Reason is meant to be a stable, machine-readable cause; the
			// protovalidate rule id ("string.max_len", "name.not_blank") is
			// exactly that.
			Reason: v.Proto.GetRuleId(),
		})
	}
	st := status.New(codes.InvalidArgument, verr.Error())
	// Clients that speak protovalidate get its native form as well.
	detailed, derr := st.WithDetails(br, verr.ToProto())
	if derr != nil {
		return st.Err()
	}
	return detailed.Err()
}

// UnaryServerInterceptor rejects unary requests that break their rules
// before the handler sees them.
func (v *Validator) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if msg, ok := req.(proto.Message); ok {
			if err := v.unaryDecodeFailure(ctx, msg); err != nil {
				return nil, err
			}
			if err := v.Check(msg); err != nil {
				return nil, err
			}
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor validates every message a stream receives, as it
// is received: a bad message in the middle of a client stream fails the
// RecvMsg call that read it.
func (v *Validator) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &validatingStream{ServerStream: ss, v: v})
	}
}

type validatingStream struct {
	grpc.ServerStream
	v     *Validator
	plans planCache
}

func (s *validatingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if msg, ok := m.(proto.Message); ok {
		if err := s.v.decodeFailure(msg); err != nil {
			return err
		}
		return s.v.check(&s.plans, msg)
	}
	return nil
}
