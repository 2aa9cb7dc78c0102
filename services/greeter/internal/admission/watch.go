package admission

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// InterceptUnary is a grpc.UnaryServerInterceptor, the first of the chain
// after recovery. It answers the RPCs TapHandle refused: grpc-go has read
// the request by then (a well-behaved client sends it with its headers),
// and ends the stream the ordinary way, which stops its deadline timer and
// frees all it held. Refused RPCs never reach the access log or the RPC
// metrics: they are counted in greeter_streams_refused_total and logged at
// a bounded rate instead. For the others, it marks the request received
// (grpc-go has read it before any interceptor runs), releases the RPC when
// its handler returns, and answers an RPC shed to free memory with why
// (shedStatus), whatever its handler returned.
//
// One interceptor rather than two: grpc-go allocates per call for each
// interceptor of a chain. It and InterceptStream are methods, not
// constructed closures, so the server can call them without allocating.
func (c *Controller) InterceptUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	cl, ok := ctx.Value(callKey{}).(*call)
	if !ok {
		return handler(ctx, req)
	}
	defer c.release(cl)
	if cl.refusal != nil {
		return nil, cl.refusal
	}
	c.receivedRequest(cl)
	if cl.shed.Load() {
		// Shed while grpc-go read its request (shed waits a tick for it).
		return nil, shedStatus
	}
	resp, err := handler(ctx, req)
	if err != nil && cl.shed.Load() {
		return nil, shedStatus
	}
	return resp, err
}

// InterceptStream is InterceptUnary for streams: it answers a refused
// stream before the handler reads anything, and watches the others'
// messages (the first one received, and sends held up by flow control).
//
// A stream reaped for want of its first message ends CANCELLED, with no
// message, like a unary call: grpc-go answers the cancelled read itself,
// before the handler's error comes back through the interceptors. So does
// a client or bidi stream shed while it waits for its client's next
// message; one shed before it read its request is answered why (shed).
func (c *Controller) InterceptStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	cl, ok := ss.Context().Value(callKey{}).(*call)
	if !ok {
		return handler(srv, ss)
	}
	defer c.release(cl)
	if cl.refusal != nil {
		return cl.refusal
	}
	ws := &watchedStream{ServerStream: ss, c: c, call: cl}
	if info.IsServerStream && cl.conn != nil && cl.conn.out != nil {
		if id, ok := streamID(ss.Context()); ok {
			ws.gate = cl.conn.out.register(id)
			defer cl.conn.out.handlerReturned(ss.Context(), id)
		}
	}
	err := handler(srv, ws)
	if err != nil && cl.shed.Load() {
		return shedStatus
	}
	return err
}

// shedStatus answers an RPC shed to free memory: the client may retry, on
// this replica once it holds less, or on another. It is also the cause its
// context is cancelled with, so that a handler returning the cause (the
// greeter's does) is seen with it by the metrics and the access log.
var shedStatus = refusal{LimitMaxRPCMemory, codes.ResourceExhausted, "greeter: the server is short of memory and this client holds the most: this RPC was ended to free it; retry after some end"}.err()

type watchedStream struct {
	grpc.ServerStream
	c    *Controller
	call *call
	gate *sendGate // nil but for a response stream on the gRPC port
}

// RecvMsg answers a stream shed before it reads (or while it read) with
// why, rather than reading: a read that the cancellation cuts short is
// answered CANCELLED by grpc-go itself.
func (s *watchedStream) RecvMsg(m any) error {
	if s.call.shed.Load() {
		return shedStatus
	}
	err := s.ServerStream.RecvMsg(m)
	s.c.receivedRequest(s.call)
	if err == nil && s.call.shed.Load() {
		return shedStatus
	}
	return err
}

// SendMsg marks the send for the reaper while it waits, whether on
// grpc-go's flow control or on the gate: to the reaper both are a client
// not reading.
func (s *watchedStream) SendMsg(m any) error {
	s.call.sendingSince.Store(s.c.sendClock.Load())
	var err error
	if s.gate != nil {
		err = s.gate.wait(s.Context())
	}
	if err == nil {
		if err = s.ServerStream.SendMsg(m); err == nil && s.gate != nil {
			s.gate.handed()
		}
	}
	s.call.sendingSince.Store(0)
	return err
}
