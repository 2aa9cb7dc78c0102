package server

import (
	"google.golang.org/grpc"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/gen/go/helloworld"
)

// serviceDescs are the services New registers: both greeting contracts,
// health, and, when on, reflection v1 and v1alpha (reflection.Register's);
// then those of WithService (options.serviceDescs).
// TestServiceDescsAreRegistered holds them to what the server serves.
func serviceDescs(reflection bool) []*grpc.ServiceDesc {
	descs := []*grpc.ServiceDesc{
		&greeterv1.GreeterService_ServiceDesc,
		&helloworld.Greeter_ServiceDesc,
		&healthgrpc.Health_ServiceDesc,
	}
	if reflection {
		descs = append(descs, &reflectionv1.ServerReflection_ServiceDesc, &reflectionv1alpha.ServerReflection_ServiceDesc)
	}
	return descs
}

// serviceDescs are the services WithService adds.
func (o *options) serviceDescs() []*grpc.ServiceDesc {
	descs := make([]*grpc.ServiceDesc, len(o.extra))
	for i, svc := range o.extra {
		descs[i] = svc.desc
	}
	return descs
}

// serviceInfo is what grpc.Server.GetServiceInfo reports once descs are
// registered, known before the server is built.
func serviceInfo(descs []*grpc.ServiceDesc) map[string]grpc.ServiceInfo {
	info := make(map[string]grpc.ServiceInfo, len(descs))
	for _, d := range descs {
		methods := make([]grpc.MethodInfo, 0, len(d.Methods)+len(d.Streams))
		for _, m := range d.Methods {
			methods = append(methods, grpc.MethodInfo{Name: m.MethodName})
		}
		for _, st := range d.Streams {
			methods = append(methods, grpc.MethodInfo{Name: st.StreamName, IsClientStream: st.ClientStreams, IsServerStream: st.ServerStreams})
		}
		info[d.ServiceName] = grpc.ServiceInfo{Methods: methods, Metadata: d.Metadata}
	}
	return info
}

// extraService is a service WithService adds.
type extraService struct {
	desc *grpc.ServiceDesc
	impl any
}

// WithService serves one more service on both ports, registered as the
// greeter's own services are: behind the same interceptor chain, admission
// (which knows its methods as it knows theirs), limits, TLS and metrics.
// For programs that prove the server's protocols with a service of their
// own (the conformance server, package conformance); the greeter binary
// adds none. desc and impl must not be nil. Each use adds one service.
func WithService(desc *grpc.ServiceDesc, impl any) Option {
	return func(o *options) error {
		if desc == nil || impl == nil {
			return &OptionError{"WithService", desc, "needs a service description and its implementation"}
		}
		o.extra = append(o.extra, extraService{desc, impl})
		return nil
	}
}
