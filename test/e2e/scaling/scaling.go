// Package scaling holds the helpers of the end-to-end client-side load
// balancing tests: a round_robin client with health checking over a fixed
// replica list (what dns:/// over a headless Service gives a client in
// Kubernetes), a stand-in for the DNS answer of a headless Service, and the
// count of calls a replica answered, from its metrics.
package scaling

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health" // client-side health checking (healthCheckConfig)
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/acme/greeter/test/harness/metrics"
)

// ServiceConfig balances round_robin over every address and, through
// grpc.health.v1 Watch, takes out of the rotation any replica that reports
// healthService NOT_SERVING: a draining greeter does so at once, while it
// still accepts RPCs for --drain-delay.
func ServiceConfig(healthService string) string {
	return fmt.Sprintf(`{
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": %q}
}`, healthService)
}

// NewRoundRobinClient returns a plaintext client over addrs, resolved by a
// manual resolver, balanced and health-checked by ServiceConfig. The
// resolver is returned to change the address list.
func NewRoundRobinClient(addrs []string, healthService string, opts ...grpc.DialOption) (*grpc.ClientConn, *manual.Resolver, error) {
	r := manual.NewBuilderWithScheme("greeter-scaling")
	var eps []resolver.Endpoint
	for _, a := range addrs {
		eps = append(eps, resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}})
	}
	r.InitialState(resolver.State{Endpoints: eps})
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(r),
		grpc.WithDefaultServiceConfig(ServiceConfig(healthService)),
	}, opts...)
	conn, err := grpc.NewClient(r.Scheme()+":///greeter", opts...)
	if err != nil {
		return nil, nil, err
	}
	return conn, r, nil
}

// SayHelloOK is how many acme.greeter.v1.GreeterService/SayHello calls the
// server at metricsAddr answered OK, from grpc_server_handled_total.
func SayHelloOK(ctx context.Context, metricsAddr string) (int, error) {
	m, err := metrics.Scrape(ctx, metricsAddr)
	if err != nil {
		return 0, err
	}
	return int(m.Sum("grpc_server_handled_total", map[string]string{
		"grpc_service": "acme.greeter.v1.GreeterService",
		"grpc_method":  "SayHello",
		"grpc_code":    "OK",
	})), nil
}

// Zone stands in for the DNS answer of a headless Service: the addresses of
// the ready pods. A client resolving through Zone.Builder sees the answer
// as a client of dns:/// does: when it starts, and again only when the
// channel asks to re-resolve, which grpc-go does when a connection is lost
// (a GOAWAY from --max-connection-age, a replica going away). Changing the
// zone alone tells connected clients nothing. (grpc-go's DNS resolver also
// waits at least 30s between two resolutions; Zone does not.)
type Zone struct {
	mu       sync.Mutex
	addrs    []string
	resolves atomic.Int64
}

// NewZone returns a zone answering addrs.
func NewZone(addrs ...string) *Zone { return &Zone{addrs: addrs} }

// Set changes the answer, as a scale-up or scale-down changes the headless
// Service's endpoints.
func (z *Zone) Set(addrs ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.addrs = addrs
}

// Resolves is how many times clients have resolved the zone.
func (z *Zone) Resolves() int64 { return z.resolves.Load() }

func (z *Zone) state() resolver.State {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.resolves.Add(1)
	var eps []resolver.Endpoint
	for _, a := range z.addrs {
		eps = append(eps, resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}})
	}
	return resolver.State{Endpoints: eps}
}

// ZoneScheme is the target scheme of Zone.Builder: "zone:///greeter".
const ZoneScheme = "zone"

// Builder returns a resolver builder for the zone; pass it with
// grpc.WithResolvers and dial ZoneScheme + ":///greeter".
func (z *Zone) Builder() resolver.Builder { return zoneBuilder{z} }

type zoneBuilder struct{ z *Zone }

func (b zoneBuilder) Scheme() string { return ZoneScheme }

func (b zoneBuilder) Build(_ resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	r := &zoneResolver{z: b.z, cc: cc}
	if err := cc.UpdateState(b.z.state()); err != nil {
		cc.ReportError(err)
	}
	return r, nil
}

type zoneResolver struct {
	z      *Zone
	cc     resolver.ClientConn
	closed atomic.Bool
}

// ResolveNow answers asynchronously, as the DNS resolver does, so that it
// never updates the channel from inside the channel's own call.
func (r *zoneResolver) ResolveNow(resolver.ResolveNowOptions) {
	go func() {
		if !r.closed.Load() {
			_ = r.cc.UpdateState(r.z.state())
		}
	}()
}

func (r *zoneResolver) Close() { r.closed.Store(true) }
