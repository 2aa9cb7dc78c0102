package web

import (
	"context"
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// call is one call in flight: its context, its headers and trailers, and
// its stats handlers.
type call struct {
	s     *Server
	ctx   context.Context
	tr    transportStream
	begin time.Time // for the stats handlers; zero without them
}

// begin starts a call of method: its incoming metadata from header, its
// transport stream for grpc.SetHeader and the like, and its stats (the
// trace context the client sent joins the call's span).
func (s *Server) begin(ctx context.Context, method string, header http.Header, clientStream, serverStream bool) *call {
	md := incomingMetadata(header)
	c := &call{s: s, tr: transportStream{method: method}}
	ctx = metadata.NewIncomingContext(ctx, md)
	ctx = grpc.NewContextWithServerTransportStream(ctx, &c.tr)
	if hs := s.cfg.StatsHandlers; len(hs) > 0 {
		c.begin = time.Now()
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
	if hs := c.s.cfg.StatsHandlers; len(hs) > 0 {
		in := &stats.InPayload{Payload: msg, Length: size, CompressedLength: size, WireLength: size + 5, RecvTime: time.Now()}
		for _, h := range hs {
			h.HandleRPC(c.ctx, in)
		}
	}
}

func (c *call) sent(msg proto.Message) {
	if hs := c.s.cfg.StatsHandlers; len(hs) > 0 {
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
	if hs := c.s.cfg.StatsHandlers; len(hs) > 0 {
		end := &stats.End{BeginTime: c.begin, EndTime: time.Now(), Error: err, Trailer: c.tr.trailerMD()}
		for _, h := range hs {
			h.HandleRPC(c.ctx, end)
		}
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
