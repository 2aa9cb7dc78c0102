// Package server assembles the greeter's server: both greeting contracts,
// health, reflection, the interceptor chain, admission, transport limits
// and the graceful drain, on two ports built from one set of options: the
// gRPC port (grpc-go) and the HTTP port (package web: Connect, gRPC-Web
// and gRPC, for browsers and plain HTTP callers).
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	// gzip, which every gRPC implementation offers, for requests and the
	// responses to them: grpc-go decompresses only what is registered, and
	// answers other requests UNIMPLEMENTED. A decompressed message is held
	// to WithMaxRecvMsgSize as any other.
	_ "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/gen/go/helloworld"

	"github.com/acme/greeter/services/greeter/internal/admission"
	"github.com/acme/greeter/services/greeter/internal/metrics"
	"github.com/acme/greeter/services/greeter/internal/service"
	"github.com/acme/greeter/services/greeter/internal/validate"
	"github.com/acme/greeter/services/greeter/internal/web"
)

// Services are the names health reports on: "" for the server as a whole,
// then each greeting contract.
var Services = []string{
	"",
	greeterv1.GreeterService_ServiceDesc.ServiceName,
	helloworld.Greeter_ServiceDesc.ServiceName,
}

// ErrDrainTimeout reports that in-flight RPCs did not finish within the
// drain timeout and were cut off.
var ErrDrainTimeout = errors.New("drain timeout: in-flight RPCs were cut off")

// Server is the greeter's server, both ports.
type Server struct {
	grpc      *grpc.Server
	health    *health.Server
	opts      options
	ready     atomic.Bool
	draining  atomic.Bool
	release   context.CancelFunc // ends health Watch streams, see versionedHealth
	admission *admission.Controller
	limits    admission.Limits
	reaper    sync.Once
	stopReap  context.CancelFunc
	web       *web.Server // the HTTP port
	chain     serverChain // the interceptors and codec, for the HTTP port too
	services  []web.Service
}

// New builds a Server with every service registered on both ports and
// health SERVING; it accepts RPCs once Serve is called. It returns an error
// naming each option given a value it cannot honour.
func New(opts ...Option) (*Server, error) {
	o := defaultOptions()
	var errs []error
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	limiter, err := o.rateLimiter()
	if err != nil {
		errs = append(errs, err)
	}
	limits, err := o.admissionLimits()
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("build server: %w", err)
	}
	if o.metrics == nil {
		m, err := metrics.New()
		if err != nil {
			return nil, fmt.Errorf("build server: %w", err)
		}
		o.metrics = m
	}
	validator, err := validate.New()
	if err != nil {
		return nil, fmt.Errorf("build server: %w", err)
	}

	// Admission tells health RPCs apart: it learns the methods from the
	// services about to be registered, before the server that needs it in
	// its chain exists.
	s := &Server{
		health:    health.NewServer(),
		opts:      o,
		limits:    limits,
		admission: admission.New(limits, o.metrics.Overload, o.logger, serviceInfo(append(serviceDescs(o.reflection), o.serviceDescs()...))),
	}
	s.chain = interceptorChain(&o, validator, s.admission, limiter)
	s.grpc = grpc.NewServer(s.serverOptions()...)

	released, release := context.WithCancel(context.Background())
	s.release = release
	// Both ports serve the same implementations: each registration is
	// kept for the HTTP port (Web).
	both := registrar{s}
	greeterv1.RegisterGreeterServiceServer(both, service.NewGreeter())
	helloworld.RegisterGreeterServer(both, service.NewHelloworld(validator))
	healthgrpc.RegisterHealthServer(both, &versionedHealth{
		Server:   s.health,
		header:   metadata.Pairs(VersionHeader, o.version),
		draining: &s.draining,
		released: released,
	})
	for _, svc := range o.extra {
		both.RegisterService(svc.desc, svc.impl)
	}
	if o.reflection {
		reflection.Register(s.grpc)
	}
	if s.web, err = s.httpPort(); err != nil {
		return nil, fmt.Errorf("build server: %w", err)
	}
	for _, name := range Services {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.exportLimits()
	// Export zeroed series for every method, so dashboards and alerts see
	// them before the first call.
	o.metrics.GRPC.InitializeMetrics(s.grpc)
	return s, nil
}

// registrar registers a service on the gRPC server and keeps it for the
// HTTP port (httpPort).
type registrar struct{ s *Server }

func (r registrar) RegisterService(desc *grpc.ServiceDesc, impl any) {
	r.s.grpc.RegisterService(desc, impl)
	r.s.services = append(r.s.services, web.Service{Desc: desc, Impl: impl})
}

// serverOptions are the gRPC port's: its transport settings
// (transport.go), the interceptor chain (chain.go), admission and the stats
// handlers.
func (s *Server) serverOptions() []grpc.ServerOption {
	opts := append(s.chain.serverOptions(), s.opts.grpcTransport()...)
	opts = append(opts, grpc.InTapHandle(s.admission.TapHandle))
	for _, h := range s.opts.statsHandlers {
		opts = append(opts, grpc.StatsHandler(h))
	}
	return opts
}

// Serve serves the gRPC port on grpcLis and the HTTP port on httpLis (nil:
// no HTTP port) until Shutdown. It returns nil once both have stopped
// after a shutdown, or at once the error of a port whose accepting failed;
// the other port serves on until Shutdown.
func (s *Server) Serve(grpcLis, httpLis net.Listener) error {
	errc := make(chan error, 2)
	ports := 1
	go func() { errc <- s.serveGRPC(grpcLis) }()
	if httpLis != nil {
		ports++
		go func() { errc <- s.web.Serve(httpLis) }()
	}
	for range ports {
		if err := <-errc; err != nil {
			s.ready.Store(false)
			return err
		}
	}
	return nil
}

// serveGRPC serves the gRPC port on lis until Shutdown.
func (s *Server) serveGRPC(lis net.Listener) error {
	if !s.draining.Load() {
		s.ready.Store(true)
	}
	s.reaper.Do(func() {
		// Reaps through the drain too, until Shutdown returns.
		ctx, stop := context.WithCancel(context.Background())
		s.stopReap = stop
		go s.admission.Run(ctx)
	})
	if err := s.grpc.Serve(s.admission.Listener(lis)); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve gRPC on %s: %w", lis.Addr(), err)
	}
	return nil
}

// Ready reports whether the server is serving and not draining: the
// answer of the /readyz endpoint.
func (s *Server) Ready() bool { return s.ready.Load() }

// Shutdown drains the server, both ports:
//
//  1. health reports NOT_SERVING for every service and Ready turns false,
//     so load balancers and orchestrators stop sending new work;
//  2. after the drain delay, listeners close and clients are told to go
//     away (GOAWAY); RPCs in flight continue to completion;
//  3. once they have all finished, Shutdown returns nil. If the drain
//     timeout or ctx ends first, the remaining RPCs are cancelled and
//     Shutdown returns ErrDrainTimeout (or ctx's error).
func (s *Server) Shutdown(ctx context.Context) error {
	defer func() {
		// Waits for a Serve that is starting the reaper; none starts after.
		s.reaper.Do(func() {})
		if s.stopReap != nil {
			s.stopReap()
		}
	}()
	s.draining.Store(true)
	s.ready.Store(false)
	s.health.Shutdown()
	s.opts.logger.InfoContext(ctx, "draining", "drain_delay", s.opts.drainDelay, "drain_timeout", s.opts.drainTimeout)

	if s.opts.drainDelay > 0 {
		delay := time.NewTimer(s.opts.drainDelay)
		select {
		case <-delay.C:
		case <-ctx.Done():
			delay.Stop()
		}
	}

	stopped := make(chan struct{})
	// The HTTP port first, then the gRPC port: health answers on the gRPC
	// port until the end of the drain.
	webStopped := make(chan struct{})
	cutWeb := s.shutdownWeb(webStopped)
	defer cutWeb()
	go func() {
		<-webStopped
		s.grpc.GracefulStop()
		close(stopped)
	}()
	// Health watchers have been sent NOT_SERVING; let them go so they do
	// not hold the drain open.
	s.release()

	timeout := time.NewTimer(s.opts.drainTimeout)
	defer timeout.Stop()
	var err error
	select {
	case <-stopped:
		return nil
	case <-timeout.C:
		err = ErrDrainTimeout
	case <-ctx.Done():
		err = fmt.Errorf("drain interrupted: %w", ctx.Err())
	}
	cutWeb()
	<-webStopped
	s.grpc.Stop()
	<-stopped
	return err
}

// Limits are the overload limits in force, those left at 0 derived from
// the memory limit.
func (s *Server) Limits() admission.Limits { return s.limits }

// exportLimits publishes the limits in force as the greeter_limit gauge and
// logs them once.
func (s *Server) exportLimits() {
	l := s.limits
	for name, v := range map[string]float64{
		"memory-limit":                         float64(s.opts.overload.memoryLimit),
		admission.LimitMaxRPCMemory:            float64(l.MaxRPCMemory),
		admission.LimitMaxRPCMemoryPerClient:   float64(l.MaxRPCMemoryPerClient),
		admission.LimitMaxHealthStreams:        float64(l.MaxHealthStreams),
		admission.LimitMaxConnections:          float64(l.MaxConnections),
		admission.LimitMaxConnectionsPerClient: float64(l.MaxConnectionsPerClient),
		admission.LimitFirstMessageTimeout:     l.FirstMessageTimeout.Seconds(),
		admission.LimitSendStallTimeout:        l.SendStallTimeout.Seconds(),
		admission.LimitWaiting:                 float64(l.MaxWaiting),
		"max-concurrent-streams":               float64(s.opts.maxStreams),
		"max-recv-msg-size":                    float64(s.opts.maxRecvMsgSize),
	} {
		s.opts.metrics.Limits.WithLabelValues(name).Set(v)
	}
	s.opts.logger.Info("overload limits",
		"memory_limit", s.opts.overload.memoryLimit,
		"max_rpc_memory", l.MaxRPCMemory, "max_rpc_memory_per_client", l.MaxRPCMemoryPerClient,
		"max_health_streams", l.MaxHealthStreams, "max_waiting_for_request", l.MaxWaiting,
		"max_connections", l.MaxConnections, "max_connections_per_client", l.MaxConnectionsPerClient,
		"max_concurrent_streams", s.opts.maxStreams, "max_recv_msg_size", s.opts.maxRecvMsgSize,
		"first_message_timeout", l.FirstMessageTimeout, "send_stall_timeout", l.SendStallTimeout)
}

// shutdownWeb starts draining the HTTP port, closing stopped once it has;
// cut cancels the calls still in flight there, which then end with their
// status.
func (s *Server) shutdownWeb(stopped chan<- struct{}) (cut func()) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		if err := s.web.Shutdown(ctx); err != nil {
			s.opts.logger.Warn("HTTP port: drain timed out, remaining calls were cancelled", "error", err)
		}
		close(stopped)
	}()
	return cancel
}
