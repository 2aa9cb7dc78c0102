package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"math"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/stats"

	"github.com/acme/greeter/services/greeter/internal/metrics"
	"github.com/acme/greeter/services/greeter/internal/ratelimit"
	"github.com/acme/greeter/services/greeter/internal/web"
)

// Option configures a Server. Each option sets one setting and leaves every
// other at its default; an option given a value it cannot honour makes New
// return an error naming it, rather than a server that misbehaves.
type Option func(*options) error

type options struct {
	logger         *slog.Logger
	metrics        *metrics.Metrics
	reflection     bool
	tlsConfig      *tls.Config
	keepalive      keepalive.ServerParameters
	enforcement    keepalive.EnforcementPolicy
	maxRecvMsgSize int
	maxSendMsgSize int
	maxStreams     uint32
	connTimeout    time.Duration
	streamWorkers  uint32
	drainTimeout   time.Duration
	drainDelay     time.Duration
	version        string
	rateLimit      float64 // RPCs per second, 0 off
	rateBurst      int     // 0: rateLimit rounded up
	overload       overloadOptions
	unary          []grpc.UnaryServerInterceptor
	stream         []grpc.StreamServerInterceptor
	statsHandlers  []stats.Handler
	allowedOrigins []string
	settingNames   web.SettingNames
	extra          []extraService // WithService's
}

// OptionError is the error New returns for an option given a value it
// cannot honour: which option, the value, and why.
type OptionError struct {
	Option string // "WithDrainTimeout"
	Value  any
	Reason string // "must not be negative"
}

func (e *OptionError) Error() string { return fmt.Sprintf("%s(%v): %s", e.Option, e.Value, e.Reason) }

// CheckOption returns the error New would return for opt alone, without
// building a server: for configuration read elsewhere (package config) to
// be checked against the option's own bounds before anything starts.
func CheckOption(opt Option) error {
	o := defaultOptions()
	return opt(&o)
}

// positive is the Option that applies set, or, when v is not positive, the
// error naming the option: for settings whose zero gRPC would read as
// refusing or timing out everything, or as no limit at all.
func positive[T int | int64 | uint32 | time.Duration](name string, v T, set func(*options)) Option {
	return func(o *options) error {
		if v <= 0 {
			return &OptionError{name, v, "must be positive"}
		}
		set(o)
		return nil
	}
}

// nonNegative is positive for settings whose zero has a meaning of its own,
// which each option's doc comment states.
func nonNegative[T int | int64 | time.Duration](name string, v T, set func(*options)) Option {
	return func(o *options) error {
		if v < 0 {
			return &OptionError{name, v, "must not be negative"}
		}
		set(o)
		return nil
	}
}

// derivable is nonNegative for the limits whose zero is derived from the
// memory limit.
func derivable[T int | int64](name string, v T, set func(*options)) Option {
	return func(o *options) error {
		if v < 0 {
			return &OptionError{name, v, "must not be negative (0 derives it)"}
		}
		set(o)
		return nil
	}
}

// Defaults of the settings whose default is not their zero value: the
// in-process server's and, through package config, the binary's.
const (
	DefaultReflection                   = true
	DefaultMaxRecvMsgSize               = 64 << 10
	DefaultMaxSendMsgSize               = 4 << 20
	DefaultMaxConcurrentStreams         = 100
	DefaultStreamWorkers                = 128
	DefaultConnectionTimeout            = 10 * time.Second
	DefaultKeepaliveTime                = time.Minute
	DefaultKeepaliveTimeout             = 20 * time.Second
	DefaultMaxConnectionAge             = 30 * time.Minute
	DefaultMaxConnectionAgeGrace        = 5 * time.Minute
	DefaultKeepaliveMinTime             = 10 * time.Second
	DefaultKeepalivePermitWithoutStream = true
	DefaultDrainTimeout                 = 20 * time.Second
)

func defaultOptions() options {
	return options{
		logger:     slog.Default(),
		reflection: DefaultReflection,
		keepalive: keepalive.ServerParameters{
			Time:                  DefaultKeepaliveTime,
			Timeout:               DefaultKeepaliveTimeout,
			MaxConnectionAge:      DefaultMaxConnectionAge,
			MaxConnectionAgeGrace: DefaultMaxConnectionAgeGrace,
		},
		enforcement: keepalive.EnforcementPolicy{
			MinTime:             DefaultKeepaliveMinTime,
			PermitWithoutStream: DefaultKeepalivePermitWithoutStream,
		},
		maxRecvMsgSize: DefaultMaxRecvMsgSize,
		maxSendMsgSize: DefaultMaxSendMsgSize,
		maxStreams:     DefaultMaxConcurrentStreams,
		connTimeout:    DefaultConnectionTimeout,
		streamWorkers:  DefaultStreamWorkers,
		drainTimeout:   DefaultDrainTimeout,
		version:        "unknown",
		overload: overloadOptions{
			memoryLimit:         DefaultMemoryLimit,
			maxHealthStreams:    DefaultMaxHealthStreams,
			firstMessageTimeout: DefaultFirstMessageTimeout,
			sendStallTimeout:    DefaultSendStallTimeout,
		},
	}
}

// WithLogger sets the logger for access lines, panics and lifecycle events.
// The default, and what nil means, is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		o.logger = l
		if l == nil {
			o.logger = slog.Default()
		}
		return nil
	}
}

// WithMetrics sets where RPC metrics and panics are counted. The default,
// and what nil means, is a fresh metrics.Metrics private to the server.
func WithMetrics(m *metrics.Metrics) Option {
	return func(o *options) error { o.metrics = m; return nil }
}

// WithReflection turns gRPC server reflection (v1 and v1alpha) on or off.
// The default is on.
func WithReflection(on bool) Option {
	return func(o *options) error { o.reflection = on; return nil }
}

// WithTLS serves TLS (and mutual TLS, as cfg says). The default, and what
// nil means, is plaintext.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) error { o.tlsConfig = cfg; return nil }
}

// WithMaxRecvMsgSize sets the largest message, in bytes, the server accepts;
// a larger one is RESOURCE_EXHAUSTED. The default is DefaultMaxRecvMsgSize,
// 64 KiB: the greeter's largest valid request is under 1 KiB. n must be
// positive: gRPC would read 0 as rejecting every message that is not empty.
func WithMaxRecvMsgSize(n int) Option {
	return positive("WithMaxRecvMsgSize", n, func(o *options) { o.maxRecvMsgSize = n })
}

// WithMaxSendMsgSize sets the largest message, in bytes, the server sends;
// an RPC whose response is larger fails with RESOURCE_EXHAUSTED. The default
// is 4 MiB. n must be positive: gRPC would read 0 as failing every response
// that is not empty.
func WithMaxSendMsgSize(n int) Option {
	return positive("WithMaxSendMsgSize", n, func(o *options) { o.maxSendMsgSize = n })
}

// WithMaxConcurrentStreams sets how many RPCs one client connection may have
// in flight (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; a stream beyond it is
// reset with REFUSED_STREAM, which gRPC clients retry transparently). The
// default is DefaultMaxConcurrentStreams, 100, the value Envoy recommends
// at the edge. n must be positive: gRPC would read 0 as no limit at all.
func WithMaxConcurrentStreams(n uint32) Option {
	return positive("WithMaxConcurrentStreams", n, func(o *options) { o.maxStreams = n })
}

// WithConnectionTimeout sets how long a new connection may take to complete
// its handshake (TLS and HTTP/2 settings). The default is 10s. d must be
// positive: gRPC would time out every connection at once.
func WithConnectionTimeout(d time.Duration) Option {
	return positive("WithConnectionTimeout", d, func(o *options) { o.connTimeout = d })
}

// WithStreamWorkers sets how many goroutines are kept to run RPCs, on the
// gRPC port and again for HTTP/2 on the HTTP port; RPCs beyond them get a
// new goroutine each. The default is 128; 0 starts a new goroutine for
// every RPC.
//
// A kept goroutine keeps the stack it grew, where a new one grows its stack
// again, by copying, on every RPC, which shows in profiles under load
// (docs/performance.md, "Figures behind the code").
func WithStreamWorkers(n uint32) Option {
	return func(o *options) error { o.streamWorkers = n; return nil }
}

// WithKeepaliveTime sets how long a connection may go without activity
// before the server pings the client, to find dead connections; on the
// HTTP port, HTTP/2 connections. The default is 1m; 0 is gRPC's own
// default, 2h, and sends no pings on the HTTP port; gRPC raises anything
// below 1s to 1s. d must not be negative.
func WithKeepaliveTime(d time.Duration) Option {
	return nonNegative("WithKeepaliveTime", d, func(o *options) { o.keepalive.Time = d })
}

// WithKeepaliveTimeout sets how long the server waits for the answer to a
// keepalive ping before it closes the connection. The default is 20s, which
// is also what 0 means (gRPC's own default). d must not be negative.
func WithKeepaliveTimeout(d time.Duration) Option {
	return nonNegative("WithKeepaliveTimeout", d, func(o *options) { o.keepalive.Timeout = d })
}

// WithMaxConnectionIdle closes connections that have had no RPC for d, on
// both ports. The default, 0, never closes an idle connection. d must not
// be negative.
func WithMaxConnectionIdle(d time.Duration) Option {
	return nonNegative("WithMaxConnectionIdle", d, func(o *options) { o.keepalive.MaxConnectionIdle = d })
}

// WithMaxConnectionAge asks clients to reconnect (GOAWAY) once a connection
// is d old, so that client-side load balancing sees new servers. The default
// is 30m; 0 never does. d must not be negative.
func WithMaxConnectionAge(d time.Duration) Option {
	return nonNegative("WithMaxConnectionAge", d, func(o *options) { o.keepalive.MaxConnectionAge = d })
}

// WithMaxConnectionAgeGrace sets how long RPCs in flight may continue after
// WithMaxConnectionAge's GOAWAY before the connection is closed. The default
// is 5m; 0 lets them run to the end, however long. d must not be negative.
func WithMaxConnectionAgeGrace(d time.Duration) Option {
	return nonNegative("WithMaxConnectionAgeGrace", d, func(o *options) { o.keepalive.MaxConnectionAgeGrace = d })
}

// WithKeepaliveMinTime sets the shortest interval at which clients may send
// keepalive pings; a client pinging more often is disconnected
// (too_many_pings). The default is 10s; 0 is gRPC's own default, 5m,
// stricter than this default. d must not be negative.
func WithKeepaliveMinTime(d time.Duration) Option {
	return nonNegative("WithKeepaliveMinTime", d, func(o *options) { o.enforcement.MinTime = d })
}

// WithKeepalivePermitWithoutStream allows or forbids client keepalive pings
// on connections with no RPC in flight. The default is to allow them.
func WithKeepalivePermitWithoutStream(permit bool) Option {
	return func(o *options) error { o.enforcement.PermitWithoutStream = permit; return nil }
}

// WithDrainTimeout sets how long, once Shutdown has stopped accepting RPCs,
// those in flight get to finish before they are cut off. The default is 20s;
// 0 cuts them off at once. d must not be negative.
func WithDrainTimeout(d time.Duration) Option {
	return nonNegative("WithDrainTimeout", d, func(o *options) { o.drainTimeout = d })
}

// WithDrainDelay sets how long Shutdown keeps accepting RPCs while health
// reports NOT_SERVING, so that load balancers move traffic away first. The
// default, 0, stops accepting at once. d must not be negative.
func WithDrainDelay(d time.Duration) Option {
	return nonNegative("WithDrainDelay", d, func(o *options) { o.drainDelay = d })
}

// WithVersion sets the version reported in the greeter-server-version header
// of health checks. The default, and what "" means, is "unknown".
func WithVersion(v string) Option {
	return func(o *options) error {
		o.version = v
		if v == "" {
			o.version = "unknown"
		}
		return nil
	}
}

// WithRateLimit limits each client to perSecond RPCs per second (see package
// ratelimit; health checks are exempt). The default, 0, does not limit.
// perSecond must be a finite number, not negative.
func WithRateLimit(perSecond float64) Option {
	return func(o *options) error {
		if math.IsNaN(perSecond) || math.IsInf(perSecond, 0) || perSecond < 0 {
			return &OptionError{"WithRateLimit", perSecond, "want a finite number of RPCs per second, 0 to disable"}
		}
		o.rateLimit = perSecond
		return nil
	}
}

// WithRateLimitBurst sets how many RPCs a client may start at once under
// WithRateLimit, which it needs. The default, 0, is WithRateLimit's rate
// rounded up. n must not be negative.
func WithRateLimitBurst(n int) Option {
	return nonNegative("WithRateLimitBurst", n, func(o *options) { o.rateBurst = n })
}

// WithUnaryInterceptors adds interceptors innermost, after validation and
// just before the handler: for tests (slow or blocking handlers) and for
// concerns specific to one deployment. Each use adds to the previous ones.
func WithUnaryInterceptors(i ...grpc.UnaryServerInterceptor) Option {
	return func(o *options) error { o.unary = append(o.unary, i...); return nil }
}

// WithStreamInterceptors is WithUnaryInterceptors for streaming RPCs.
func WithStreamInterceptors(i ...grpc.StreamServerInterceptor) Option {
	return func(o *options) error { o.stream = append(o.stream, i...); return nil }
}

// WithStatsHandler adds h to the gRPC stats handlers of the server, which
// see every RPC from its first byte to its end, before and after the
// interceptors: tracing's (package tracing). The default is none, and a
// server without one pays nothing for them; nil adds none. Each use adds
// to the previous ones.
func WithStatsHandler(h stats.Handler) Option {
	return func(o *options) error {
		if h != nil {
			o.statsHandlers = append(o.statsHandlers, h)
		}
		return nil
	}
}

// rateLimiter is the limiter the options ask for, nil for none. Settings
// that only make sense together are checked here, once every option has been
// applied, so that their order does not matter.
func (o *options) rateLimiter() (*ratelimit.Limiter, error) {
	if o.rateLimit == 0 {
		if o.rateBurst > 0 {
			return nil, fmt.Errorf("WithRateLimitBurst(%d) needs WithRateLimit", o.rateBurst)
		}
		return nil, nil
	}
	return ratelimit.New(o.rateLimit, o.rateBurst), nil
}
