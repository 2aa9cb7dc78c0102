// Package web serves gRPC services to browsers and plain HTTP callers: the
// Connect protocol (JSON and binary; every kind of call over HTTP/1.1 and
// HTTP/2, bidi over HTTP/1.1 half duplex; GET for methods marked
// NO_SIDE_EFFECTS), gRPC-Web (binary and text) and gRPC, on
// one HTTP port (HTTP/1.1, and HTTP/2 as h2c or over TLS).
//
// Every method is a connect-go handler (connectrpc.com/connect, which
// speaks all three protocols) that calls the service's generated gRPC
// handler as grpc-go does, with the gRPC port's own interceptor chain
// (WithUnaryInterceptors, WithStreamInterceptors: recovery, admission,
// metrics, access log, rate limit, validation with its google.rpc.BadRequest
// details), its codec (WithCodec) and its stats handlers (WithStatsHandlers:
// tracing), on a grpc.ServerStream over the connect-go stream: the request's
// headers are its incoming metadata, grpc.SetHeader and SetTrailer set the
// response's, the client's deadline is the context's. A request message
// stays undecoded until the handler asks for it, so that it is decoded into
// the handler's own type, within the interceptors. Serving the contract
// with connect-go's generated handlers would have meant writing every
// interceptor again as connect interceptors; transcoding into a
// grpc.Server's ServeHTTP (vanguard-go, the first design) paid for a second
// transport per call (docs/performance.md, "HTTP port"); grpc-gateway
// speaks neither Connect nor gRPC-Web.
//
// What the gRPC port's transport does, this package does in front of the
// handlers, each with the gRPC port's setting:
//
//   - admission (grpc.InTapHandle): WithAdmission, asked for every call
//     before any of its body is read, and told when the call ends;
//   - connection caps: WithListener wraps the listener, as the gRPC port's;
//   - MaxConcurrentStreams: WithMaxConcurrentStreams, for HTTP/2;
//   - the connection timeout and keepalive: ReadHeaderTimeout (a slowloris
//     sending headers slowly), WithFirstMessageTimeout (a body that does not
//     arrive), WithSendStallTimeout (a client that reads nothing) and
//     WithIdleTimeout (a connection with no request);
//   - max message size: a request body larger than WithMaxMessageSize is
//     refused from its Content-Length before it is read, or as soon as that
//     many bytes have arrived.
//
// CORS (WithAllowedOrigins) follows connectrpc.com/cors's header lists.
// Requests refused here, before they reach a handler, are counted in
// greeter_http_refused_total by reason and logged; every request is counted
// in greeter_http_requests_total by protocol, and its access line names the
// protocol.
package web

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/stats"
)

// Defaults of the options.
const (
	// DefaultMaxMessageSize is WithMaxMessageSize's default, the gRPC
	// port's default largest request message.
	DefaultMaxMessageSize = 64 << 10
	// DefaultReadHeaderTimeout is WithReadHeaderTimeout's default.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultIdleTimeout is WithIdleTimeout's default.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultFirstMessageTimeout is WithFirstMessageTimeout's default.
	DefaultFirstMessageTimeout = 10 * time.Second
	// DefaultSendStallTimeout is WithSendStallTimeout's default.
	DefaultSendStallTimeout = 30 * time.Second
	// DefaultMaxConcurrentStreams is WithMaxConcurrentStreams's default.
	DefaultMaxConcurrentStreams = 100
	// DefaultWorkers is WithWorkers's default, the gRPC port's number of
	// stream workers.
	DefaultWorkers = 128
	// PreflightMaxAge is how long browsers may cache a CORS preflight's
	// answer: two hours, the most Chromium honours.
	PreflightMaxAge = 2 * time.Hour
)

// Option configures a Server. Each sets one setting and leaves the others at
// their defaults; a value New cannot honour makes it return an error naming
// the option.
type Option func(*options) error

type options struct {
	codec               encoding.CodecV2
	unary               []grpc.UnaryServerInterceptor
	stream              []grpc.StreamServerInterceptor
	statsHandlers       []stats.Handler
	origins             []string
	exposedHeaders      []string
	admission           Admission
	listener            func(net.Listener) net.Listener
	tlsConfig           *tls.Config
	maxMessageSize      int
	readHeaderTimeout   time.Duration
	idleTimeout         time.Duration
	firstMessageTimeout time.Duration
	sendStallTimeout    time.Duration
	maxStreams          uint32
	workers             int
	logger              *slog.Logger
	registerer          prometheus.Registerer
}

func defaultOptions() options {
	return options{
		maxMessageSize:      DefaultMaxMessageSize,
		readHeaderTimeout:   DefaultReadHeaderTimeout,
		idleTimeout:         DefaultIdleTimeout,
		firstMessageTimeout: DefaultFirstMessageTimeout,
		sendStallTimeout:    DefaultSendStallTimeout,
		maxStreams:          DefaultMaxConcurrentStreams,
		workers:             DefaultWorkers,
		logger:              slog.Default(),
	}
}

// WithCodec sets the codec that decodes binary (proto) request messages,
// as grpc.ForceServerCodecV2 does on a grpc.Server: the gRPC port's, so
// that both decode alike. The default, and what nil means, is grpc-go's
// proto codec. JSON is decoded with protojson, unknown fields refused.
func WithCodec(c encoding.CodecV2) Option {
	return func(o *options) error { o.codec = c; return nil }
}

// WithUnaryInterceptors adds interceptors every unary call runs through,
// outermost first, as grpc.ChainUnaryInterceptor does: the gRPC port's. The
// default is none.
func WithUnaryInterceptors(i ...grpc.UnaryServerInterceptor) Option {
	return func(o *options) error { o.unary = append(o.unary, i...); return nil }
}

// WithStreamInterceptors adds interceptors every streaming call runs
// through, outermost first, as grpc.ChainStreamInterceptor does: the gRPC
// port's. The default is none.
func WithStreamInterceptors(i ...grpc.StreamServerInterceptor) Option {
	return func(o *options) error { o.stream = append(o.stream, i...); return nil }
}

// WithStatsHandlers adds gRPC stats handlers (tracing's), told of every
// call as grpc.StatsHandler's are: tagged, begun, its headers, its
// messages, its end. The default is none.
func WithStatsHandlers(h ...stats.Handler) Option {
	return func(o *options) error {
		for _, handler := range h {
			if handler != nil {
				o.statsHandlers = append(o.statsHandlers, handler)
			}
		}
		return nil
	}
}

// WithAllowedOrigins sets the origins ("https://app.example.com") whose
// pages may call the server from a browser (CORS); "*" allows any. A request
// with an Origin outside the list is refused with PERMISSION_DENIED. The
// default, no origin, sends no CORS headers and refuses nothing: a page
// served from the same origin as the API (behind one proxy) needs none.
func WithAllowedOrigins(origins ...string) Option {
	return func(o *options) error {
		for _, origin := range origins {
			if origin == "" {
				return errors.New("WithAllowedOrigins: an empty origin")
			}
		}
		o.origins = append(o.origins, origins...)
		return nil
	}
}

// WithExposedHeaders adds response headers a browser page may read beside
// those the protocols need (Grpc-Status and the like): the server's own.
func WithExposedHeaders(names ...string) Option {
	return func(o *options) error { o.exposedHeaders = append(o.exposedHeaders, names...); return nil }
}

// WithAdmission asks a for every call before its body is read. The default,
// and what nil means, admits every call.
func WithAdmission(a Admission) Option {
	return func(o *options) error { o.admission = a; return nil }
}

// WithListener wraps every listener Serve is given, to cap connections as
// the gRPC port does. The default serves the listener as it is.
func WithListener(wrap func(net.Listener) net.Listener) Option {
	return func(o *options) error { o.listener = wrap; return nil }
}

// WithTLS serves TLS (and mutual TLS, as cfg says), offering HTTP/2 and
// HTTP/1.1. The default, and what nil means, is plaintext: HTTP/1.1 and
// HTTP/2 without TLS (h2c).
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) error { o.tlsConfig = cfg; return nil }
}

// WithMaxMessageSize sets the largest request message, in bytes, JSON
// included: a unary or server-streaming call's body larger than this is
// refused (RESOURCE_EXHAUSTED) before it is read whole, as is any message of
// a client stream. The default is DefaultMaxMessageSize, 64 KiB. n must be
// positive.
func WithMaxMessageSize(n int) Option {
	return positive("WithMaxMessageSize", n, func(o *options) { o.maxMessageSize = n })
}

// WithReadHeaderTimeout sets how long a request's headers may take to
// arrive. The default is DefaultReadHeaderTimeout, 5s. d must be positive.
func WithReadHeaderTimeout(d time.Duration) Option {
	return positive("WithReadHeaderTimeout", d, func(o *options) { o.readHeaderTimeout = d })
}

// WithIdleTimeout sets how long a connection may stay open without a
// request. The default is DefaultIdleTimeout, 2m. d must be positive.
func WithIdleTimeout(d time.Duration) Option {
	return positive("WithIdleTimeout", d, func(o *options) { o.idleTimeout = d })
}

// WithFirstMessageTimeout sets how long the body of a call that sends one
// request message (unary, server streaming) may take to arrive; a client
// stream's body is unbounded in time, its first message watched by the
// admission. The default is DefaultFirstMessageTimeout, 10s; 0 never times
// out. d must not be negative.
func WithFirstMessageTimeout(d time.Duration) Option {
	return nonNegative("WithFirstMessageTimeout", d, func(o *options) { o.firstMessageTimeout = d })
}

// WithSendStallTimeout sets how long one write may wait for a client that
// reads nothing: a call's write to its stream (an HTTP/2 client that grants
// no flow-control window) before the call is cut off, a write to the
// connection before the connection is closed, with every call on it. The
// default is DefaultSendStallTimeout, 30s; 0 never. d must not be negative.
func WithSendStallTimeout(d time.Duration) Option {
	return nonNegative("WithSendStallTimeout", d, func(o *options) { o.sendStallTimeout = d })
}

// WithMaxConcurrentStreams sets how many calls one HTTP/2 connection may
// have in flight. The default is DefaultMaxConcurrentStreams, 100, the gRPC
// port's. n must be positive.
func WithMaxConcurrentStreams(n uint32) Option {
	return positive("WithMaxConcurrentStreams", n, func(o *options) { o.maxStreams = n })
}

// WithWorkers sets how many goroutines are kept to run calls, started as
// calls need them: a kept goroutine keeps the stack it grew, where net/http
// gives every request a new goroutine whose stack grows again, by copying,
// on every call. Calls beyond them run on their request's goroutine. The
// default is DefaultWorkers, 128, the gRPC port's stream workers; 0 keeps
// none. n must not be negative.
func WithWorkers(n int) Option {
	return nonNegative("WithWorkers", n, func(o *options) { o.workers = n })
}

// WithLogger sets the logger of refused requests. The default, and what nil
// means, is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		o.logger = l
		if l == nil {
			o.logger = slog.Default()
		}
		return nil
	}
}

// WithRegisterer sets where the HTTP metrics are registered. The default,
// and what nil means, is a registry of their own, which nothing exports.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(o *options) error { o.registerer = r; return nil }
}

func positive[T int | uint32 | time.Duration](name string, v T, set func(*options)) Option {
	return func(o *options) error {
		if v <= 0 {
			return fmt.Errorf("%s(%v): must be positive", name, v)
		}
		set(o)
		return nil
	}
}

func nonNegative[T int | time.Duration](name string, v T, set func(*options)) Option {
	return func(o *options) error {
		if v < 0 {
			return fmt.Errorf("%s(%v): must not be negative", name, v)
		}
		set(o)
		return nil
	}
}
