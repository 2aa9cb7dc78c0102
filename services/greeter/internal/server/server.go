// Package server assembles the greeter's gRPC server: both greeting
// contracts, health, reflection, the interceptor chain, transport limits,
// and the graceful drain on shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/gen/go/helloworld"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"

	"github.com/acme/greeter/services/greeter/internal/interceptors"
	"github.com/acme/greeter/services/greeter/internal/metrics"
	"github.com/acme/greeter/services/greeter/internal/ratelimit"
	"github.com/acme/greeter/services/greeter/internal/service"
	"github.com/acme/greeter/services/greeter/internal/validate"
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

// Server is the greeter's gRPC server.
type Server struct {
	grpc     *grpc.Server
	health   *health.Server
	opts     options
	ready    atomic.Bool
	draining atomic.Bool
	release  context.CancelFunc // ends health Watch streams, see versionedHealth
}

// New builds a Server with every service registered and health SERVING; it
// accepts RPCs once Serve is called. It returns an error naming each option
// given a value it cannot honour.
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

	s := &Server{health: health.NewServer(), opts: o}
	s.grpc = grpc.NewServer(s.serverOptions(validator, limiter)...)

	greeterv1.RegisterGreeterServiceServer(s.grpc, service.NewGreeter())
	helloworld.RegisterGreeterServer(s.grpc, service.NewHelloworld(validator))

	released, release := context.WithCancel(context.Background())
	s.release = release
	healthgrpc.RegisterHealthServer(s.grpc, &versionedHealth{
		Server:   s.health,
		header:   metadata.Pairs(VersionHeader, o.version),
		draining: &s.draining,
		released: released,
	})
	for _, name := range Services {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	if o.reflection {
		reflection.Register(s.grpc)
	}
	// Export zeroed series for every method, so dashboards and alerts see
	// them before the first call.
	o.metrics.GRPC.InitializeMetrics(s.grpc)
	return s, nil
}

// serverOptions builds the transport settings and the interceptor chain.
//
// The chain runs, outermost first (unary calls start with the validator's
// decode guard, which only moves a decode failure into the context; see
// package validate, codec.go):
//
//  1. recovery: a panic anywhere below, interceptors included, becomes
//     INTERNAL instead of killing the process;
//  2. metrics, then the access log: they time and record every outcome,
//     including validation failures;
//  3. the per-client rate limit, when WithRateLimit enables it: rejected
//     calls are still counted and logged (RESOURCE_EXHAUSTED), but cost no
//     validation; health checks are exempt;
//  4. validation: bad requests, and requests that do not decode, never
//     reach the handlers;
//  5. recovery again, so that a handler panic reaches metrics and the
//     access log as an INTERNAL result rather than bypassing them;
//  6. interceptors added with WithUnaryInterceptors/WithStreamInterceptors,
//     which count as part of the handler.
func (s *Server) serverOptions(v *validate.Validator, limiter *ratelimit.Limiter) []grpc.ServerOption {
	o := s.opts
	recoverUnary, recoverStream := interceptors.Recovery(o.logger, o.metrics.Panics)
	logUnary, logStream := interceptors.AccessLog(o.logger)

	chain := validate.Chain{
		UnaryOuter:  []grpc.UnaryServerInterceptor{recoverUnary, o.metrics.GRPC.UnaryServerInterceptor(), logUnary},
		StreamOuter: []grpc.StreamServerInterceptor{recoverStream, o.metrics.GRPC.StreamServerInterceptor(), logStream},
		UnaryInner:  append([]grpc.UnaryServerInterceptor{recoverUnary}, o.unary...),
		StreamInner: append([]grpc.StreamServerInterceptor{recoverStream}, o.stream...),
	}
	if limiter != nil {
		chain.UnaryOuter = append(chain.UnaryOuter, limiter.UnaryServerInterceptor())
		chain.StreamOuter = append(chain.StreamOuter, limiter.StreamServerInterceptor())
	}

	opts := append(v.ServerOptions(chain),
		grpc.KeepaliveParams(o.keepalive),
		grpc.KeepaliveEnforcementPolicy(o.enforcement),
		grpc.MaxRecvMsgSize(o.maxRecvMsgSize),
		grpc.MaxSendMsgSize(o.maxSendMsgSize),
		grpc.MaxConcurrentStreams(o.maxStreams),
		grpc.ConnectionTimeout(o.connTimeout),
	)
	if o.streamWorkers > 0 {
		opts = append(opts, grpc.NumStreamWorkers(o.streamWorkers))
	}
	if o.tlsConfig != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(o.tlsConfig)))
	}
	return opts
}

// Serve accepts connections on lis until Shutdown; it returns nil after a
// shutdown and an error if accepting fails.
func (s *Server) Serve(lis net.Listener) error {
	if !s.draining.Load() {
		s.ready.Store(true)
	}
	if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		s.ready.Store(false)
		return fmt.Errorf("serve gRPC on %s: %w", lis.Addr(), err)
	}
	return nil
}

// Ready reports whether the server is serving and not draining: the
// answer of the /readyz endpoint.
func (s *Server) Ready() bool { return s.ready.Load() }

// Shutdown drains the server:
//
//  1. health reports NOT_SERVING for every service and Ready turns false,
//     so load balancers and orchestrators stop sending new work;
//  2. after the drain delay, listeners close and clients are told to go
//     away (GOAWAY); RPCs in flight continue to completion;
//  3. once they have all finished, Shutdown returns nil. If the drain
//     timeout or ctx ends first, the remaining RPCs are cancelled and
//     Shutdown returns ErrDrainTimeout (or ctx's error).
func (s *Server) Shutdown(ctx context.Context) error {
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
	go func() {
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
	s.grpc.Stop()
	<-stopped
	return err
}
