package server

import (
	"crypto/tls"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/acme/greeter/services/greeter/internal/metrics"
	"github.com/acme/greeter/services/greeter/internal/ratelimit"
)

// Option configures a Server.
type Option func(*options)

type options struct {
	logger       *slog.Logger
	metrics      *metrics.Metrics
	reflection   bool
	tlsConfig    *tls.Config
	keepalive    keepalive.ServerParameters
	enforcement  keepalive.EnforcementPolicy
	limits       Limits
	drainTimeout time.Duration
	drainDelay   time.Duration
	version      string
	rateLimit    *ratelimit.Limiter
	unary        []grpc.UnaryServerInterceptor
	stream       []grpc.StreamServerInterceptor
}

// Limits bounds what one client can ask of the server.
type Limits struct {
	MaxRecvMsgSize       int           // bytes
	MaxSendMsgSize       int           // bytes
	MaxConcurrentStreams uint32        // per connection
	ConnectionTimeout    time.Duration // handshake of a new connection
	// StreamWorkers is how many goroutines are kept to run RPCs; 0 starts a
	// new goroutine for every RPC. A kept goroutine keeps the stack it grew,
	// where a new one grows its stack again, by copying, on every RPC: that
	// copying was a tenth of the server's CPU under load in a profile
	// (docs/performance.md). RPCs beyond the workers get a new goroutine.
	StreamWorkers uint32
}

func defaultOptions() options {
	return options{
		logger:     slog.Default(),
		reflection: true,
		keepalive: keepalive.ServerParameters{
			Time:                  time.Minute,
			Timeout:               20 * time.Second,
			MaxConnectionAge:      30 * time.Minute,
			MaxConnectionAgeGrace: 5 * time.Minute,
		},
		enforcement: keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true},
		limits: Limits{
			MaxRecvMsgSize:       4 << 20,
			MaxSendMsgSize:       4 << 20,
			MaxConcurrentStreams: 1000,
			ConnectionTimeout:    10 * time.Second,
			StreamWorkers:        128,
		},
		drainTimeout: 20 * time.Second,
		version:      "unknown",
	}
}

// WithLogger sets the logger for access lines, panics and lifecycle events.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithMetrics sets where RPC metrics and panics are counted; by default a
// fresh, private metrics.Metrics.
func WithMetrics(m *metrics.Metrics) Option { return func(o *options) { o.metrics = m } }

// WithReflection turns gRPC server reflection (v1 and v1alpha) on or off;
// it is on by default.
func WithReflection(on bool) Option { return func(o *options) { o.reflection = on } }

// WithTLS serves TLS (and mutual TLS, as cfg says) instead of plaintext.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tlsConfig = cfg } }

// WithKeepalive sets the server's keepalive pings and connection ages, and
// how often clients may ping it.
func WithKeepalive(p keepalive.ServerParameters, e keepalive.EnforcementPolicy) Option {
	return func(o *options) { o.keepalive, o.enforcement = p, e }
}

// WithLimits sets message size, concurrency and handshake limits.
func WithLimits(l Limits) Option { return func(o *options) { o.limits = l } }

// WithDrain sets the graceful shutdown timing: delay is how long the server
// keeps serving after reporting NOT_SERVING, timeout how long in-flight RPCs
// then get to finish before they are cut off.
func WithDrain(timeout, delay time.Duration) Option {
	return func(o *options) { o.drainTimeout, o.drainDelay = timeout, delay }
}

// WithVersion sets the version reported in the greeter-server-version
// header of health checks.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// WithRateLimit limits each client to perSecond RPCs per second, burst at
// once (see package ratelimit); perSecond 0 (the default) disables it.
func WithRateLimit(perSecond float64, burst int) Option {
	return func(o *options) {
		o.rateLimit = nil
		if perSecond > 0 {
			o.rateLimit = ratelimit.New(perSecond, burst)
		}
	}
}

// WithUnaryInterceptors adds interceptors innermost, after validation and
// just before the handler: for tests (slow or blocking handlers) and for
// concerns specific to one deployment.
func WithUnaryInterceptors(i ...grpc.UnaryServerInterceptor) Option {
	return func(o *options) { o.unary = append(o.unary, i...) }
}

// WithStreamInterceptors is WithUnaryInterceptors for streaming RPCs.
func WithStreamInterceptors(i ...grpc.StreamServerInterceptor) Option {
	return func(o *options) { o.stream = append(o.stream, i...) }
}
