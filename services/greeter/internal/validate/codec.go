package validate

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	encodingproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Requests that do not decode.
//
// grpc-go answers every codec Unmarshal error with INTERNAL ("grpc: failed
// to unmarshal the received message"), whatever error the codec returns
// (rpc_util.go, recv), and for unary RPCs it does so before any interceptor
// runs, so neither the client nor metrics nor the access log can tell a
// client's malformed bytes from a server bug. A request whose bytes are not
// a valid protobuf encoding of its message — a proto3 string that is not
// UTF-8, a truncated length-delimited field, a bad tag — is the client's
// fault: INVALID_ARGUMENT.
//
// The mechanism is small:
//
//  1. the codec is grpc-go's proto codec, except that when Unmarshal fails
//     it resets the message, records why against the message pointer and
//     reports success, so the RPC carries on to the interceptors;
//  2. the validation interceptors, which see every request message of every
//     RPC (unary requests before the handler, stream messages in RecvMsg),
//     answer INVALID_ARGUMENT with a BadRequest detail naming the field
//     when it can be found. The handler never sees the reset message.
//
// The codec without the interceptors would hand handlers empty messages in
// place of undecodable ones: Codec's doc says what goes with it.
//
// Records must not accumulate (TestDecodeErrorsDoNotLeak). A stream
// message's record is taken out (LoadAndDelete) in the same RecvMsg call
// that decoded it. A unary request is decoded before the interceptor chain
// runs, and an interceptor may end the call before validation does (the
// rate limit, a panic): so a decode guard, the outermost unary interceptor,
// takes the record out at once and hands it down in the context to the
// validation interceptor.

// decodeError is why a request message did not decode.
type decodeError struct {
	msgName protoreflect.FullName
	field   string // top-level field at fault, "" if unknown
	reason  string // wire.invalid_utf8 or wire.malformed
	err     error  // protobuf's own error
}

// Reasons of decode failures, in BadRequest field violations.
const (
	ReasonInvalidUTF8 = "wire.invalid_utf8"
	ReasonMalformed   = "wire.malformed"
)

func (d *decodeError) status() error {
	desc := "must be valid protobuf wire data"
	if d.reason == ReasonInvalidUTF8 {
		desc = "must be valid UTF-8"
	}
	where := ""
	if d.field != "" {
		where = d.field + ": "
	}
	st := status.Newf(codes.InvalidArgument, "request is not a valid %s: %s%s", d.msgName, where, desc)
	detailed, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{
		Field: d.field, Description: desc, Reason: d.reason,
	}}})
	if err != nil {
		return st.Err()
	}
	return detailed.Err()
}

// Codec returns the server option that installs v's codec: grpc-go's proto
// codec, except that a request which does not decode is recorded for v's
// interceptors to answer INVALID_ARGUMENT (see the top of this file). It
// goes with DecodeGuard, outermost in the unary chain, and with v's
// validation interceptors: without them handlers would be handed empty
// messages in place of undecodable ones. Package server's chain installs
// the four together.
func (v *Validator) Codec() grpc.ServerOption {
	return grpc.ForceServerCodecV2(v.serverCodec())
}

// ServerCodec is the codec Codec installs, for a transport that decodes
// requests itself and hands them to the same interceptors (the HTTP port,
// package web).
func (v *Validator) ServerCodec() encoding.CodecV2 { return v.serverCodec() }

// serverCodec is the server codec that records decode failures for v's
// interceptors.
func (v *Validator) serverCodec() codec {
	return codec{base: encoding.GetCodecV2(encodingproto.Name), failures: &v.decodeFailures}
}

type codec struct {
	base     encoding.CodecV2
	failures *decodeFailures
}

// decodeFailures records the messages that did not decode, until the
// interceptor that sees each takes its record out.
type decodeFailures struct {
	m sync.Map // proto.Message → *decodeError
	// n counts the records: every message of every RPC is looked up, and
	// almost never found, so "none at all" is answered without hashing.
	n atomic.Int64
}

func (f *decodeFailures) store(msg proto.Message, d *decodeError) {
	f.n.Add(1)
	f.m.Store(msg, d)
}

// take takes the record of msg out, if there is one.
func (f *decodeFailures) take(msg proto.Message) (*decodeError, bool) {
	if f.n.Load() == 0 {
		return nil, false
	}
	d, ok := f.m.LoadAndDelete(msg)
	if !ok {
		return nil, false
	}
	f.n.Add(-1)
	return d.(*decodeError), true
}

func (c codec) Name() string { return encodingproto.Name }

func (c codec) Marshal(m any) (mem.BufferSlice, error) { return c.base.Marshal(m) }

func (c codec) Unmarshal(data mem.BufferSlice, m any) error {
	err := c.base.Unmarshal(data, m)
	if err == nil {
		return nil
	}
	msg, ok := m.(proto.Message)
	if !ok {
		return err
	}
	buf := data.Materialize()
	field, reason := diagnose(buf, msg.ProtoReflect().Descriptor())
	proto.Reset(msg)
	c.failures.store(msg, &decodeError{
		msgName: msg.ProtoReflect().Descriptor().FullName(), field: field, reason: reason, err: err,
	})
	return nil
}

// decodeFailureKey is the context key of a unary request's decode failure.
type decodeFailureKey struct{}

// DecodeGuard returns the unary interceptor that moves a request's decode
// failure from the codec's record into the context, where the validation
// interceptor finds it. It must run outermost, so that no record is left
// behind by a call that ends before validation.
func (v *Validator) DecodeGuard() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if msg, ok := req.(proto.Message); ok {
			if d, found := v.decodeFailures.take(msg); found {
				ctx = context.WithValue(ctx, decodeFailureKey{}, d)
			}
		}
		return handler(ctx, req)
	}
}

// unaryDecodeFailure is the decode failure of a unary request: handed down
// by the decode guard, or still recorded (a test that calls the validation
// interceptor alone).
func (v *Validator) unaryDecodeFailure(ctx context.Context, msg proto.Message) error {
	if d, ok := ctx.Value(decodeFailureKey{}).(*decodeError); ok {
		return d.status()
	}
	return v.decodeFailure(msg)
}

// decodeFailure takes out the decode failure recorded for msg, if any, as
// an INVALID_ARGUMENT status error.
func (v *Validator) decodeFailure(msg proto.Message) error {
	d, ok := v.decodeFailures.take(msg)
	if !ok {
		return nil
	}
	return d.status()
}

// diagnose walks the fields of b, which did not decode as md, and names the
// field at fault (a path such as "interval" or "interval.seconds"): a
// string field that is not UTF-8, or a field whose encoding is cut short or
// malformed.
func diagnose(b []byte, md protoreflect.MessageDescriptor) (field, reason string) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", ReasonMalformed
		}
		b = b[n:]
		fd := md.Fields().ByNumber(num)
		name := ""
		if fd != nil {
			name = string(fd.Name())
		}
		if typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return name, ReasonMalformed
			}
			if fd != nil && fd.Kind() == protoreflect.StringKind && !utf8.Valid(v) {
				return name, ReasonInvalidUTF8
			}
			if fd != nil && fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() {
				if inner, r := diagnose(v, fd.Message()); inner != "" || proto.Unmarshal(v, dynamicNew(fd.Message())) != nil {
					return joinPath(name, inner), r
				}
			}
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return name, ReasonMalformed
		}
		b = b[n:]
	}
	// Every top-level field is well formed: the fault is nested.
	return "", ReasonMalformed
}

func joinPath(outer, inner string) string {
	if inner == "" {
		return outer
	}
	return outer + "." + inner
}

// dynamicNew returns an empty message of type md, to try decoding a nested
// field on its own.
func dynamicNew(md protoreflect.MessageDescriptor) proto.Message {
	return dynamicpb.NewMessage(md)
}

// String is for logs and tests.
func (d *decodeError) String() string {
	return fmt.Sprintf("%s: field %q: %s: %v", d.msgName, d.field, d.reason, d.err)
}
