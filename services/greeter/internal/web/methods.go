package web

import (
	"fmt"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/acme/greeter/services/greeter/internal/rpcmethod"
)

// Service is one service a Server serves: what grpc.Server.RegisterService
// is given, as generated code's Register<Service>Server passes it.
type Service struct {
	Desc *grpc.ServiceDesc
	Impl any
}

// methodInfo is what serveCall needs of a method.
type methodInfo struct {
	clientStreams bool
	bidi          bool
	handler       http.Handler // connect-go's
}

// register builds a connect-go handler for every method of services, by
// path.
func (s *Server) register(services []Service) (map[string]methodInfo, error) {
	out := map[string]methodInfo{}
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
			path := rpcmethod.Join(svc.Desc.ServiceName, md.MethodName)
			opts := s.handlerOptions(sd.Methods().ByName(protoreflect.Name(md.MethodName)))
			out[path] = methodInfo{handler: connect.NewUnaryHandler(path, s.unaryCall(svc.Impl, path, md.Handler), opts...)}
		}
		for _, sd2 := range svc.Desc.Streams {
			path := rpcmethod.Join(svc.Desc.ServiceName, sd2.StreamName)
			opts := s.handlerOptions(sd.Methods().ByName(protoreflect.Name(sd2.StreamName)))
			c := &streamCall{s: s, impl: svc.Impl, handler: sd2.Handler,
				info: &grpc.StreamServerInfo{FullMethod: path, IsClientStream: sd2.ClientStreams, IsServerStream: sd2.ServerStreams}}
			m := methodInfo{clientStreams: sd2.ClientStreams, bidi: sd2.ClientStreams && sd2.ServerStreams}
			switch {
			case sd2.ClientStreams && sd2.ServerStreams:
				m.handler = connect.NewBidiStreamHandler(path, c.bidi, opts...)
			case sd2.ClientStreams:
				m.handler = connect.NewClientStreamHandler(path, c.clientStream, opts...)
			default:
				m.handler = connect.NewServerStreamHandler(path, c.serverStream, opts...)
			}
			out[path] = m
		}
	}
	return out, nil
}

// handlerOptions are the connect-go options of the method md (nil when the
// descriptor does not have it).
func (s *Server) handlerOptions(md protoreflect.MethodDescriptor) []connect.HandlerOption {
	opts := []connect.HandlerOption{
		connect.WithReadMaxBytes(s.cfg.MaxMessageSize),
		// A Connect unary POST names the protocol's version in a header,
		// a GET in its query (connect=v1): plain HTTP requests that merely
		// look like Connect are refused.
		connect.WithRequireConnectProtocolHeader(),
	}
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
