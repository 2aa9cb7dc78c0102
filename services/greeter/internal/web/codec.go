package web

import (
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

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
	// wire is data as the server's codec takes it, kept here so that
	// decoding allocates no slice for it.
	wire [1]mem.Buffer
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
		in.wire[0] = mem.SliceBuffer(in.data)
		return s.cfg.Codec.Unmarshal(in.wire[:], msg)
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
