package conformance

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"connectrpc.com/connect"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	conformancev1 "github.com/acme/greeter/services/greeter/internal/conformance/gen/connectrpc/conformance/v1"
)

// Service is connectrpc.conformance.v1.ConformanceService as the suite's
// docs/testing_servers.md describes it: each request says what to answer
// (data, headers, trailers, an error, a delay), and every answer echoes what
// the server saw (request headers, timeout, the requests). Unimplemented is
// left unimplemented, as the suite expects. It is written against grpc-go's
// generated interfaces, as the greeter's own services are, so it runs behind
// both ports of the greeter's server (server.WithService).
type Service struct {
	conformancev1.UnimplementedConformanceServiceServer
}

var _ conformancev1.ConformanceServiceServer = (*Service)(nil)

// Unary answers as req's response definition says.
func (Service) Unary(ctx context.Context, req *conformancev1.UnaryRequest) (*conformancev1.UnaryResponse, error) {
	payload, err := unary(ctx, req.GetResponseDefinition(), []proto.Message{req})
	if err != nil {
		return nil, err
	}
	return &conformancev1.UnaryResponse{Payload: payload}, nil
}

// IdempotentUnary is Unary, called with Connect GET.
func (Service) IdempotentUnary(ctx context.Context, req *conformancev1.IdempotentUnaryRequest) (*conformancev1.IdempotentUnaryResponse, error) {
	payload, err := unary(ctx, req.GetResponseDefinition(), []proto.Message{req})
	if err != nil {
		return nil, err
	}
	return &conformancev1.IdempotentUnaryResponse{Payload: payload}, nil
}

// ClientStream reads every request, then answers as the first one's
// response definition says.
func (Service) ClientStream(stream grpc.ClientStreamingServer[conformancev1.ClientStreamRequest, conformancev1.ClientStreamResponse]) error {
	var (
		def  *conformancev1.UnaryResponseDefinition
		reqs []proto.Message
	)
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if len(reqs) == 0 {
			def = req.GetResponseDefinition()
		}
		reqs = append(reqs, req)
	}
	payload, err := unary(stream.Context(), def, reqs)
	if err != nil {
		return err
	}
	return stream.SendAndClose(&conformancev1.ClientStreamResponse{Payload: payload})
}

// ServerStream sends the response definition's data, one message each,
// then its error if it has one.
func (Service) ServerStream(req *conformancev1.ServerStreamRequest, stream grpc.ServerStreamingServer[conformancev1.ServerStreamResponse]) error {
	def := req.GetResponseDefinition()
	if def == nil {
		return nil
	}
	// Headers go out at once, so that the client sees them before any
	// delay.
	if err := stream.SendHeader(toMetadata(def.GetResponseHeaders())); err != nil {
		return err
	}
	stream.SetTrailer(toMetadata(def.GetResponseTrailers()))
	info := requestInfo(stream.Context(), []proto.Message{req})
	for i, data := range def.GetResponseData() {
		payload := &conformancev1.ConformancePayload{Data: data}
		if i == 0 {
			payload.RequestInfo = info
		}
		sleep(def.GetResponseDelayMs())
		if err := stream.Send(&conformancev1.ServerStreamResponse{Payload: payload}); err != nil {
			return err
		}
	}
	if def.GetError() == nil {
		return nil
	}
	if len(def.GetResponseData()) == 0 {
		return statusError(def.GetError(), info)
	}
	return statusError(def.GetError(), nil)
}

// BidiStream answers each request as it arrives (full duplex) or once all
// have (half duplex), as the first request says.
func (Service) BidiStream(stream grpc.BidiStreamingServer[conformancev1.BidiStreamRequest, conformancev1.BidiStreamResponse]) error {
	ctx := stream.Context()
	var (
		def        *conformancev1.StreamResponseDefinition
		fullDuplex bool
		received   int
		sent       int
		pending    []proto.Message // received since the last response
		info       *conformancev1.ConformancePayload_RequestInfo
	)
	send := func() error {
		payload := &conformancev1.ConformancePayload{Data: def.GetResponseData()[sent]}
		switch {
		case sent == 0:
			info = requestInfo(ctx, pending)
			payload.RequestInfo = info
		case fullDuplex:
			payload.RequestInfo = &conformancev1.ConformancePayload_RequestInfo{Requests: anys(pending)}
		}
		sleep(def.GetResponseDelayMs())
		if err := stream.Send(&conformancev1.BidiStreamResponse{Payload: payload}); err != nil {
			return err
		}
		sent++
		pending = nil
		return nil
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		pending = append(pending, req)
		received++
		if received == 1 {
			def, fullDuplex = req.GetResponseDefinition(), req.GetFullDuplex()
			if def != nil {
				if err := setStreamMetadata(stream, def, fullDuplex); err != nil {
					return err
				}
			}
		}
		if !fullDuplex {
			continue
		}
		if sent >= len(def.GetResponseData()) {
			// Nothing left to answer with: end with the error, if any.
			break
		}
		if err := send(); err != nil {
			return err
		}
	}
	for sent < len(def.GetResponseData()) {
		if err := send(); err != nil {
			return err
		}
	}
	if def.GetError() == nil {
		return nil
	}
	if sent == 0 {
		return statusError(def.GetError(), requestInfo(ctx, pending))
	}
	return statusError(def.GetError(), nil)
}

// setStreamMetadata sets a bidi stream's response headers and trailers: a
// full-duplex stream sends its headers at once, a half-duplex one only with
// its first response, since a server that answers before the upload ends
// may stop reading it (HTTP/1.1).
func setStreamMetadata(stream grpc.ServerStream, def *conformancev1.StreamResponseDefinition, fullDuplex bool) error {
	headers := toMetadata(def.GetResponseHeaders())
	var err error
	if fullDuplex {
		err = stream.SendHeader(headers)
	} else {
		err = stream.SetHeader(headers)
	}
	stream.SetTrailer(toMetadata(def.GetResponseTrailers()))
	return err
}

// unary is the answer of a unary or client-streaming call to reqs, as def
// says: its headers and trailers set, after its delay, a payload echoing
// what the server saw, or def's error carrying that in its details.
func unary(ctx context.Context, def *conformancev1.UnaryResponseDefinition, reqs []proto.Message) (*conformancev1.ConformancePayload, error) {
	info := requestInfo(ctx, reqs)
	if def == nil {
		return &conformancev1.ConformancePayload{RequestInfo: info}, nil
	}
	if err := grpc.SetHeader(ctx, toMetadata(def.GetResponseHeaders())); err != nil {
		return nil, err
	}
	if err := grpc.SetTrailer(ctx, toMetadata(def.GetResponseTrailers())); err != nil {
		return nil, err
	}
	sleep(def.GetResponseDelayMs())
	if e := def.GetError(); e != nil {
		return nil, statusError(e, info)
	}
	return &conformancev1.ConformancePayload{Data: def.GetResponseData(), RequestInfo: info}, nil
}

// requestInfo is what the server saw of a call: its request headers, the
// time left before its deadline, and reqs.
func requestInfo(ctx context.Context, reqs []proto.Message) *conformancev1.ConformancePayload_RequestInfo {
	info := &conformancev1.ConformancePayload_RequestInfo{Requests: anys(reqs)}
	md, _ := metadata.FromIncomingContext(ctx)
	for name, values := range md {
		if strings.HasSuffix(name, "-bin") {
			// The suite's Header carries binary values as they travel.
			encoded := make([]string, len(values))
			for i, v := range values {
				encoded[i] = connect.EncodeBinaryHeader([]byte(v))
			}
			values = encoded
		}
		info.RequestHeaders = append(info.RequestHeaders, &conformancev1.Header{Name: name, Value: values})
	}
	if deadline, ok := ctx.Deadline(); ok {
		info.TimeoutMs = proto.Int64(max(time.Until(deadline), 0).Milliseconds())
	}
	return info
}

// anys wraps each message in an Any.
func anys(msgs []proto.Message) []*anypb.Any {
	out := make([]*anypb.Any, 0, len(msgs))
	for _, m := range msgs {
		a, err := anypb.New(m)
		if err != nil {
			// Only a message type unknown to the registry fails, and these
			// are the service's own.
			panic(err)
		}
		out = append(out, a)
	}
	return out
}

// statusError is e as a gRPC status, with info, when not nil, appended to
// its details.
func statusError(e *conformancev1.Error, info *conformancev1.ConformancePayload_RequestInfo) error {
	details := e.GetDetails()
	if info != nil {
		details = append(details, anys([]proto.Message{info})...)
	}
	return status.FromProto(&spb.Status{Code: int32(e.GetCode()), Message: e.GetMessage(), Details: details}).Err()
}

// toMetadata is headers as gRPC metadata, binary values decoded.
func toMetadata(headers []*conformancev1.Header) metadata.MD {
	md := metadata.MD{}
	for _, h := range headers {
		name := strings.ToLower(h.GetName())
		for _, v := range h.GetValue() {
			if strings.HasSuffix(name, "-bin") {
				if decoded, err := connect.DecodeBinaryHeader(v); err == nil {
					v = string(decoded)
				}
			}
			md.Append(name, v)
		}
	}
	return md
}

// sleep waits ms milliseconds, whatever the call's deadline, as the suite's
// reference servers do: the deadline is the server's to enforce, and the
// suite's clients end the call at theirs. A delay that ended at the deadline
// raced the client's own: it could read the server's answer half-way and
// report it malformed.
func sleep(ms uint32) {
	time.Sleep(time.Duration(ms) * time.Millisecond)
}
