package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/acme/greeter/services/greeter/internal/readmostly"
)

// Service is one service a Server serves: what grpc.Server.RegisterService
// is given, as generated code's Register<Service>Server passes it.
type Service struct {
	Desc *grpc.ServiceDesc
	Impl any
}

// Each method is a connect-go handler whose messages stay undecoded until
// the method's generated gRPC handler asks for them (its dec function, or
// RecvMsg), so that a message is decoded into the very type, by the very
// codec, and within the very interceptors a call on the gRPC port meets.
// connect-go's generic handlers need a Go type for their messages; these
// two carry any method's.

// inbound is a request message as it arrived: its bytes and codec.
type inbound struct {
	data []byte
	json bool
}

// outbound is a response message, encoded by the codec the client chose.
type outbound struct{ msg proto.Message }

// messageCodec is connect-go's codec of one name ("proto", "json") over
// inbound and outbound.
type messageCodec struct {
	name string
	json bool
}

func (c messageCodec) Name() string { return c.name }

func (c messageCodec) Marshal(m any) ([]byte, error) { return c.MarshalAppend(nil, m) }

func (c messageCodec) MarshalAppend(dst []byte, m any) ([]byte, error) {
	var msg proto.Message
	switch m := m.(type) {
	case *outbound:
		msg = m.msg
	case proto.Message: // connect-go's own: an error's details
		msg = m
	default:
		return nil, fmt.Errorf("marshal %T: not a protobuf message", m)
	}
	if c.json {
		return protojson.MarshalOptions{}.MarshalAppend(dst, msg)
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, msg)
}

func (c messageCodec) Unmarshal(data []byte, m any) error {
	in, ok := m.(*inbound)
	if !ok {
		return fmt.Errorf("unmarshal into %T: not a request message", m)
	}
	// connect-go reuses data once this returns.
	in.data = append([]byte(nil), data...)
	in.json = c.json
	return nil
}

func (c messageCodec) IsBinary() bool { return !c.json }

// codecs are the codecs of every method, under the names connect-go gives
// its own.
var codecs = []connect.Codec{
	messageCodec{name: codecProto},
	messageCodec{name: codecJSON, json: true},
	messageCodec{name: codecJSON + "; charset=utf-8", json: true},
}

// decode decodes in into msg: binary with the server's codec (which may
// record a failure for the validation interceptors rather than fail),
// JSON with protojson, a field the contract does not have refused.
func (s *Server) decode(in *inbound, msg any) error {
	pm, ok := msg.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "decode into %T: not a protobuf message", msg)
	}
	if !in.json {
		return s.opts.codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(in.data)}, msg)
	}
	if len(in.data) == 0 {
		// protojson would say "unexpected token"; an empty JSON request
		// is an empty message, as a Connect client sends it.
		return nil
	}
	if err := protojson.Unmarshal(in.data, pm); err != nil {
		s.metrics.refused.WithLabelValues(reasonMalformed).Inc()
		return status.Errorf(codes.InvalidArgument, "the request is not JSON of %s: %v", pm.ProtoReflect().Descriptor().FullName(), err)
	}
	return nil
}

// handlers builds a connect-go handler for every method of services, by
// path.
func (s *Server) handlers(services []Service) (map[string]http.Handler, error) {
	unary := chainUnary(s.opts.unary)
	stream := chainStream(s.opts.stream)
	out := map[string]http.Handler{}
	for _, svc := range services {
		schema, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc.Desc.ServiceName))
		if err != nil {
			return nil, fmt.Errorf("service %s: no descriptor: %w", svc.Desc.ServiceName, err)
		}
		sd, ok := schema.(protoreflect.ServiceDescriptor)
		if !ok {
			return nil, fmt.Errorf("service %s: %s is not a service", svc.Desc.ServiceName, schema.FullName())
		}
		for _, md := range svc.Desc.Methods {
			path := "/" + svc.Desc.ServiceName + "/" + md.MethodName
			opts := s.handlerOptions(sd.Methods().ByName(protoreflect.Name(md.MethodName)))
			out[path] = connect.NewUnaryHandler(path, s.unaryCall(svc.Impl, path, md.Handler, unary), opts...)
		}
		for _, sd2 := range svc.Desc.Streams {
			path := "/" + svc.Desc.ServiceName + "/" + sd2.StreamName
			opts := s.handlerOptions(sd.Methods().ByName(protoreflect.Name(sd2.StreamName)))
			c := &streamCall{s: s, impl: svc.Impl, handler: sd2.Handler, interceptor: stream,
				info: &grpc.StreamServerInfo{FullMethod: path, IsClientStream: sd2.ClientStreams, IsServerStream: sd2.ServerStreams}}
			switch {
			case sd2.ClientStreams && sd2.ServerStreams:
				out[path] = connect.NewBidiStreamHandler(path, c.bidi, opts...)
			case sd2.ClientStreams:
				out[path] = connect.NewClientStreamHandler(path, c.clientStream, opts...)
			default:
				out[path] = connect.NewServerStreamHandler(path, c.serverStream, opts...)
			}
		}
	}
	return out, nil
}

// handlerOptions are the connect-go options of the method md (nil when the
// descriptor does not have it).
func (s *Server) handlerOptions(md protoreflect.MethodDescriptor) []connect.HandlerOption {
	opts := []connect.HandlerOption{connect.WithReadMaxBytes(s.opts.maxMessageSize)}
	for _, c := range codecs {
		opts = append(opts, connect.WithCodec(c))
	}
	if md == nil {
		return opts
	}
	opts = append(opts, connect.WithSchema(md))
	if mo, ok := md.Options().(*descriptorpb.MethodOptions); ok && mo.GetIdempotencyLevel() == descriptorpb.MethodOptions_NO_SIDE_EFFECTS {
		opts = append(opts, connect.WithIdempotency(connect.IdempotencyNoSideEffects))
	}
	return opts
}

// chainUnary is grpc.ChainUnaryInterceptor's chain as one interceptor,
// which grpc-go keeps unexported; nil for none.
func chainUnary(chain []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	switch len(chain) {
	case 0:
		return nil
	case 1:
		return chain[0]
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return chain[0](ctx, req, info, unaryStep(chain, 1, info, handler))
	}
}

func unaryStep(chain []grpc.UnaryServerInterceptor, i int, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) grpc.UnaryHandler {
	if i == len(chain) {
		return handler
	}
	return func(ctx context.Context, req any) (any, error) {
		return chain[i](ctx, req, info, unaryStep(chain, i+1, info, handler))
	}
}

// chainStream is chainUnary for streams.
func chainStream(chain []grpc.StreamServerInterceptor) grpc.StreamServerInterceptor {
	switch len(chain) {
	case 0:
		return nil
	case 1:
		return chain[0]
	}
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return chain[0](srv, ss, info, streamStep(chain, 1, info, handler))
	}
}

func streamStep(chain []grpc.StreamServerInterceptor, i int, info *grpc.StreamServerInfo, handler grpc.StreamHandler) grpc.StreamHandler {
	if i == len(chain) {
		return handler
	}
	return func(srv any, ss grpc.ServerStream) error {
		return chain[i](srv, ss, info, streamStep(chain, i+1, info, handler))
	}
}

// unaryCall is the connect-go function of a unary method: its generated
// gRPC handler, called as grpc-go calls it, with the interceptors.
func (s *Server) unaryCall(impl any, method string, handler grpc.MethodHandler, interceptor grpc.UnaryServerInterceptor) func(context.Context, *connect.Request[inbound]) (*connect.Response[outbound], error) {
	return func(ctx context.Context, req *connect.Request[inbound]) (*connect.Response[outbound], error) {
		c := s.begin(ctx, method, req.Header(), false, false)
		resp, err := handler(impl, c.ctx, func(msg any) error {
			if err := s.decode(req.Msg, msg); err != nil {
				return err
			}
			c.received(msg, len(req.Msg.data))
			return nil
		}, interceptor)
		err = c.end(err)
		if err != nil {
			return nil, c.connectError(err)
		}
		pm, ok := resp.(proto.Message)
		if !ok {
			return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("%s answered %T, not a protobuf message", method, resp))
		}
		c.sent(pm)
		res := connect.NewResponse(&outbound{msg: pm})
		c.tr.copyTo(res.Header(), res.Trailer())
		return res, nil
	}
}

// call is one call in flight: its context, its headers and trailers, and
// its stats handlers.
type call struct {
	s     *Server
	ctx   context.Context
	tr    *transportStream
	begin time.Time
}

// begin starts a call of method: its incoming metadata from header, its
// transport stream for grpc.SetHeader and the like, and its stats (the
// trace context the client sent joins the call's span).
func (s *Server) begin(ctx context.Context, method string, header http.Header, clientStream, serverStream bool) *call {
	md := incomingMetadata(header)
	c := &call{s: s, tr: &transportStream{method: method}, begin: time.Now()}
	ctx = metadata.NewIncomingContext(ctx, md)
	ctx = grpc.NewContextWithServerTransportStream(ctx, c.tr)
	if hs := s.opts.statsHandlers; len(hs) > 0 {
		for _, h := range hs {
			ctx = h.TagRPC(ctx, &stats.RPCTagInfo{FullMethodName: method})
		}
		var remote net.Addr
		if p, ok := peer.FromContext(ctx); ok {
			remote = p.Addr
		}
		for _, h := range hs {
			h.HandleRPC(ctx, &stats.Begin{BeginTime: c.begin, IsClientStream: clientStream, IsServerStream: serverStream})
			h.HandleRPC(ctx, &stats.InHeader{Header: md, FullMethod: method, RemoteAddr: remote, Compression: header.Get("Content-Encoding")})
		}
	}
	c.ctx = ctx
	return c
}

func (c *call) received(msg any, size int) {
	for _, h := range c.s.opts.statsHandlers {
		h.HandleRPC(c.ctx, &stats.InPayload{Payload: msg, Length: size, CompressedLength: size, WireLength: size + 5, RecvTime: time.Now()})
	}
}

func (c *call) sent(msg proto.Message) {
	if hs := c.s.opts.statsHandlers; len(hs) > 0 {
		size := proto.Size(msg)
		for _, h := range hs {
			h.HandleRPC(c.ctx, &stats.OutPayload{Payload: msg, Length: size, CompressedLength: size, WireLength: size + 5, SentTime: time.Now()})
		}
	}
}

// end ends the call with err, as the client will see it: a call cut off by
// Shutdown is UNAVAILABLE, retried elsewhere, rather than CANCELLED.
func (c *call) end(err error) error {
	if err != nil && c.s.cutoff.Err() != nil && status.Code(err) == codes.Canceled {
		err = status.Error(codes.Unavailable, "the server is shutting down and cut the call off at the end of its drain: retry")
	}
	for _, h := range c.s.opts.statsHandlers {
		h.HandleRPC(c.ctx, &stats.End{BeginTime: c.begin, EndTime: time.Now(), Error: err, Trailer: c.tr.trailerMD()})
	}
	return err
}

// connectError is err as the Connect error the client gets, with the
// call's headers and trailers.
func (c *call) connectError(err error) *connect.Error {
	ce := connectError(err)
	c.tr.copyTo(ce.Meta(), ce.Meta())
	return ce
}

// transportStream is a call's grpc.ServerTransportStream: grpc.SetHeader,
// SendHeader and SetTrailer collect metadata for the response.
type transportStream struct {
	method  string
	mu      sync.Mutex
	header  metadata.MD
	trailer metadata.MD
	// sentHeader: the headers went out with the first message; later
	// ones are an error, as on grpc-go.
	sentHeader bool
}

func (t *transportStream) Method() string { return t.method }

func (t *transportStream) SetHeader(md metadata.MD) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sentHeader {
		return status.Error(codes.Internal, "transport: SetHeader called after the headers were sent")
	}
	t.header = metadata.Join(t.header, md)
	return nil
}

func (t *transportStream) SendHeader(md metadata.MD) error { return t.SetHeader(md) }

func (t *transportStream) SetTrailer(md metadata.MD) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.trailer = metadata.Join(t.trailer, md)
	return nil
}

func (t *transportStream) trailerMD() metadata.MD {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.trailer
}

// copyTo adds the headers not sent yet to header, and the trailers to
// trailer.
func (t *transportStream) copyTo(header, trailer http.Header) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.sentHeader {
		t.sentHeader = true
		addMetadata(header, t.header)
	}
	addMetadata(trailer, t.trailer)
}

// flushHeader adds the headers to header, once, as the first message goes
// out.
func (t *transportStream) flushHeader(header http.Header) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sentHeader {
		return
	}
	t.sentHeader = true
	addMetadata(header, t.header)
}

func addMetadata(h http.Header, md metadata.MD) {
	for k, vs := range md {
		for _, v := range vs {
			if strings.HasSuffix(k, "-bin") {
				v = connect.EncodeBinaryHeader([]byte(v))
			}
			h.Add(k, v)
		}
	}
}

// incomingMetadata is a request's headers as grpc-go's transports give
// them to a handler: lower-case keys, binary values decoded, without the
// headers of the protocols themselves.
func incomingMetadata(h http.Header) metadata.MD {
	md := make(metadata.MD, len(h))
	for k, vs := range h {
		k = lowerName(k)
		if reservedHeader(k) {
			continue
		}
		if _, seen := md[k]; !seen && !strings.HasSuffix(k, "-bin") {
			// The header's own values: grpc-go hands interceptors a
			// copy of the incoming metadata (FromIncomingContext).
			md[k] = vs
			continue
		}
		for _, v := range vs {
			if strings.HasSuffix(k, "-bin") {
				b, err := connect.DecodeBinaryHeader(v)
				if err != nil {
					continue
				}
				v = string(b)
			}
			md[k] = append(md[k], v)
		}
	}
	return md
}

// lowerNames are header names in lower case by their canonical form, up to
// maxLowerNames of them: the same few names come with every call, and
// lowering each anew allocated.
var lowerNames readmostly.Map[string, string]

const maxLowerNames = 256

func lowerName(k string) string {
	if l, ok := lowerNames.Load(k); ok {
		return l
	}
	l := strings.ToLower(k)
	if lowerNames.Len() < maxLowerNames {
		lowerNames.LoadOrMake(k, func() string { return l })
	}
	return l
}

func reservedHeader(k string) bool {
	switch k {
	case "content-type", "content-length", "content-encoding", "accept-encoding", "te", "connection", "trailer":
		return true
	}
	return strings.HasPrefix(k, "grpc-") || strings.HasPrefix(k, "connect-")
}

// streamCall is the connect-go function of a streaming method: its
// generated gRPC handler, called as grpc-go calls it, with the interceptors,
// on a grpc.ServerStream over the connect-go stream.
type streamCall struct {
	s           *Server
	impl        any
	handler     grpc.StreamHandler
	interceptor grpc.StreamServerInterceptor
	info        *grpc.StreamServerInfo
}

func (sc *streamCall) run(ss *serverStream) error {
	var err error
	if sc.interceptor == nil {
		err = sc.handler(sc.impl, ss)
	} else {
		err = sc.interceptor(sc.impl, ss, sc.info, sc.handler)
	}
	return ss.call.end(err)
}

func (sc *streamCall) serverStream(ctx context.Context, req *connect.Request[inbound], stream *connect.ServerStream[outbound]) error {
	ss := &serverStream{call: sc.s.begin(ctx, sc.info.FullMethod, req.Header(), false, true), header: stream.ResponseHeader()}
	first := req.Msg
	ss.recv = func() (*inbound, error) {
		if first == nil {
			return nil, io.EOF
		}
		in := first
		first = nil
		return in, nil
	}
	ss.send = stream.Send
	return sc.runToTrailer(ss, stream.ResponseHeader(), stream.ResponseTrailer())
}

func (sc *streamCall) clientStream(ctx context.Context, stream *connect.ClientStream[inbound]) (*connect.Response[outbound], error) {
	ss := &serverStream{call: sc.s.begin(ctx, sc.info.FullMethod, stream.RequestHeader(), true, false)}
	ss.recv = func() (*inbound, error) {
		if stream.Receive() {
			return stream.Msg(), nil
		}
		if err := stream.Err(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	var res *outbound
	ss.send = func(out *outbound) error {
		if res != nil {
			return status.Error(codes.Internal, "a client-streaming method sent a second response")
		}
		res = out
		return nil
	}
	err := sc.run(ss)
	if err == nil && res == nil {
		err = status.Error(codes.Internal, "the method returned without a response")
	}
	if err != nil {
		return nil, ss.call.connectError(err)
	}
	r := connect.NewResponse(res)
	ss.call.tr.copyTo(r.Header(), r.Trailer())
	return r, nil
}

func (sc *streamCall) bidi(ctx context.Context, stream *connect.BidiStream[inbound, outbound]) error {
	ss := &serverStream{call: sc.s.begin(ctx, sc.info.FullMethod, stream.RequestHeader(), true, true), header: stream.ResponseHeader()}
	ss.recv = stream.Receive
	ss.send = stream.Send
	return sc.runToTrailer(ss, stream.ResponseHeader(), stream.ResponseTrailer())
}

// runToTrailer runs a call whose responses are streamed, and ends it with
// its trailers (and its headers, if no message carried them). A failed
// call's trailers go with its error only: connect-go adds the error's
// metadata to the response trailers, which would repeat them.
func (sc *streamCall) runToTrailer(ss *serverStream, header, trailer http.Header) error {
	err := sc.run(ss)
	if err != nil {
		ss.call.tr.flushHeader(header)
		return ss.call.connectError(err)
	}
	ss.call.tr.copyTo(header, trailer)
	return nil
}

// serverStream is a grpc.ServerStream over a connect-go stream.
type serverStream struct {
	call   *call
	header http.Header // the response's, for the first message; nil: sent with the response
	recv   func() (*inbound, error)
	send   func(*outbound) error
}

func (ss *serverStream) Context() context.Context        { return ss.call.ctx }
func (ss *serverStream) SetHeader(md metadata.MD) error  { return ss.call.tr.SetHeader(md) }
func (ss *serverStream) SendHeader(md metadata.MD) error { return ss.call.tr.SendHeader(md) }
func (ss *serverStream) SetTrailer(md metadata.MD)       { _ = ss.call.tr.SetTrailer(md) }

func (ss *serverStream) SendMsg(m any) error {
	pm, ok := m.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "send %T: not a protobuf message", m)
	}
	if ss.header != nil {
		ss.call.tr.flushHeader(ss.header)
	}
	if err := ss.send(&outbound{msg: pm}); err != nil {
		return grpcError(err)
	}
	ss.call.sent(pm)
	return nil
}

func (ss *serverStream) RecvMsg(m any) error {
	in, err := ss.recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return grpcError(err)
	}
	if err := ss.call.s.decode(in, m); err != nil {
		return err
	}
	ss.call.received(m, len(in.data))
	return nil
}

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
