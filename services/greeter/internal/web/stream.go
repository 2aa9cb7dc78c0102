package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// The calls: each method's connect-go function runs its generated gRPC
// handler as grpc-go runs it, with the interceptors.

// unaryCall is the connect-go function of a unary method: its generated
// gRPC handler, called as grpc-go calls it, with the interceptors.
func (s *Server) unaryCall(impl any, method string, handler grpc.MethodHandler) func(context.Context, *connect.Request[inbound]) (*connect.Response[outbound], error) {
	return func(ctx context.Context, req *connect.Request[inbound]) (*connect.Response[outbound], error) {
		c := s.begin(ctx, method, req.Header(), false, false)
		resp, err := handler(impl, c.ctx, func(msg any) error {
			if err := s.decode(req.Msg, msg); err != nil {
				return err
			}
			c.received(msg, len(req.Msg.data))
			return nil
		}, s.cfg.Unary)
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

// streamCall is the connect-go function of a streaming method: its
// generated gRPC handler, called as grpc-go calls it, with the interceptors,
// on a grpc.ServerStream over the connect-go stream.
type streamCall struct {
	s       *Server
	impl    any
	handler grpc.StreamHandler
	info    *grpc.StreamServerInfo
}

func (sc *streamCall) run(ss *serverStream) error {
	var err error
	if sc.s.cfg.Stream == nil {
		err = sc.handler(sc.impl, ss)
	} else {
		err = sc.s.cfg.Stream(sc.impl, ss, sc.info, sc.handler)
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
		res = &outbound{msg: out.msg} // out is the stream's, reused
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
	out    outbound
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
	// One outbound for every message: connect-go encodes it before Send
	// returns.
	ss.out.msg = pm
	err := ss.send(&ss.out)
	ss.out.msg = nil
	if err != nil {
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
