package server

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/acme/greeter/services/greeter/internal/admission"
)

// Defaults of the overload limits (see package admission and
// docs/reliability.md for the arithmetic).
const (
	// DefaultMemoryLimit is the memory the server plans for when neither
	// WithMemoryLimit nor a cgroup says: the Kubernetes pod's limit.
	DefaultMemoryLimit = 256 << 20
	// MinMemoryLimit is the least WithMemoryLimit accepts.
	MinMemoryLimit = 64 << 20
	// MemoryPerConnection is the memory limit's share per connection that
	// WithMaxConnections's default allows.
	MemoryPerConnection = 512 << 10
	// DefaultMaxHealthStreams is WithMaxHealthStreams's default.
	DefaultMaxHealthStreams = 64
	// DefaultFirstMessageTimeout is WithFirstMessageTimeout's default.
	DefaultFirstMessageTimeout = 10 * time.Second
	// DefaultSendStallTimeout is WithSendStallTimeout's default.
	DefaultSendStallTimeout = 30 * time.Second
	// streamWindow is every stream's HTTP/2 receive window, fixed: grpc-go
	// would otherwise grow windows with its bandwidth estimate, up to
	// 16 MiB per stream, which a client can provoke and then leave unread.
	// The connection's window (connWindow) is as large as its streams'
	// together, so it never holds a stream below its own window: with the
	// 64 KiB default, client streams on one connection waited on each
	// other's window updates, at a cost in server CPU per message
	// (docs/performance.md, "Figures behind the code").
	// What a connection may buffer is still bounded by its streams' windows,
	// each charged to its RPC.
	streamWindow = 64 << 10
)

// connWindow is the HTTP/2 receive window of a connection that may carry
// maxStreams streams: streamWindow for each, at most what HTTP/2 allows.
func connWindow(maxStreams uint32) int32 {
	return int32(min(int64(streamWindow)*int64(maxStreams), math.MaxInt32))
}

type overloadOptions struct {
	memoryLimit             int64
	maxRPCMemory            int64 // 0: memoryLimit / 2
	maxRPCMemoryPerClient   int64 // 0: maxRPCMemory * 3 / 4
	maxHealthStreams        int
	maxConnections          int // 0: memoryLimit / 512 KiB
	maxConnectionsPerClient int // 0: maxConnections / 4
	firstMessageTimeout     time.Duration
	sendStallTimeout        time.Duration
}

// WithMemoryLimit sets the memory, in bytes, the server plans for: the
// limits below that are left at 0 are derived from it. main passes the
// container's cgroup limit. The default is DefaultMemoryLimit, 256 MiB. n
// must be at least 64 MiB.
func WithMemoryLimit(n int64) Option {
	return func(o *options) error {
		if n < MinMemoryLimit {
			return &OptionError{"WithMemoryLimit", n, fmt.Sprintf("want at least %d (64 MiB)", MinMemoryLimit)}
		}
		o.overload.memoryLimit = n
		return nil
	}
}

// WithMaxRPCMemory sets the worst-case memory, in bytes, all RPCs in flight
// (health apart) may hold: each is charged, when it starts, its request
// (WithMaxRecvMsgSize) plus admission.RequestOverhead, and an RPC that
// streams responses admission.ResponseQueue more (what a client that reads
// nothing can make grpc-go queue). An RPC that does not fit is refused
// UNAVAILABLE before its handler starts. The default, 0, is half the
// memory limit (WithMemoryLimit): 128 MiB, room for 819 unary RPCs or 91
// response streams at once. n must not be negative.
func WithMaxRPCMemory(n int64) Option {
	return derivable("WithMaxRPCMemory", n, func(o *options) { o.overload.maxRPCMemory = n })
}

// WithMaxRPCMemoryPerClient sets how much of WithMaxRPCMemory one client
// (mTLS certificate subject, else IP address) may hold; an RPC beyond it is
// refused RESOURCE_EXHAUSTED with a RetryInfo, so one client cannot crowd
// the others out. The default, 0, is three quarters of WithMaxRPCMemory. n
// must not be negative.
func WithMaxRPCMemoryPerClient(n int64) Option {
	return derivable("WithMaxRPCMemoryPerClient", n, func(o *options) { o.overload.maxRPCMemoryPerClient = n })
}

// WithMaxHealthStreams sets how many health RPCs (grpc.health.v1) may be in
// flight; they are not charged to WithMaxRPCMemory, so probes are answered
// however much the other RPCs hold. One client may hold an eighth of them
// (at least 1). The default is DefaultMaxHealthStreams, 64. n must be
// positive.
func WithMaxHealthStreams(n int) Option {
	return positive("WithMaxHealthStreams", n, func(o *options) { o.overload.maxHealthStreams = n })
}

// WithMaxConnections sets how many client connections may be open; one
// beyond it is closed as soon as it is accepted. The default, 0, is the
// memory limit / 512 KiB: 512 for 256 MiB. n must not be negative.
func WithMaxConnections(n int) Option {
	return derivable("WithMaxConnections", n, func(o *options) { o.overload.maxConnections = n })
}

// WithMaxConnectionsPerClient sets how many connections one IP address may
// have open; one beyond it is closed as soon as it is accepted. The
// default, 0, is a quarter of WithMaxConnections. n must not be negative.
func WithMaxConnectionsPerClient(n int) Option {
	return derivable("WithMaxConnectionsPerClient", n, func(o *options) { o.overload.maxConnectionsPerClient = n })
}

// WithFirstMessageTimeout sets how long an RPC may wait for its first
// request message (all of it) before it is cancelled, like net/http's
// ReadHeaderTimeout: a client that opens streams and sends nothing, or
// trickles its request, does not hold them. The default is
// DefaultFirstMessageTimeout, 10s; 0 never cancels. d must not be
// negative.
func WithFirstMessageTimeout(d time.Duration) Option {
	return nonNegative("WithFirstMessageTimeout", d, func(o *options) { o.overload.firstMessageTimeout = d })
}

// WithSendStallTimeout closes a connection on which an RPC's send has waited
// this long for HTTP/2 flow control, that is for a client that reads
// nothing: closing the connection is the only way to free what grpc-go
// queued for it. The default is DefaultSendStallTimeout, 30s; 0 never
// closes. d must not be negative.
func WithSendStallTimeout(d time.Duration) Option {
	return nonNegative("WithSendStallTimeout", d, func(o *options) { o.overload.sendStallTimeout = d })
}

// admissionLimits derives the limits left at 0 from the memory limit and
// checks that they can admit anything. Like rateLimiter, it runs once every
// option has been applied.
func (o *options) admissionLimits() (admission.Limits, error) {
	v := o.overload
	l := admission.Limits{
		MaxRPCMemory:            v.maxRPCMemory,
		MaxRPCMemoryPerClient:   v.maxRPCMemoryPerClient,
		MaxHealthStreams:        v.maxHealthStreams,
		MaxHealthPerClient:      max(1, v.maxHealthStreams/8),
		MaxConnections:          v.maxConnections,
		MaxConnectionsPerClient: v.maxConnectionsPerClient,
		FirstMessageTimeout:     v.firstMessageTimeout,
		SendStallTimeout:        v.sendStallTimeout,
		MaxRecvMsgSize:          o.maxRecvMsgSize,
	}
	if l.MaxRPCMemory == 0 {
		l.MaxRPCMemory = v.memoryLimit / 2
	}
	if l.MaxRPCMemoryPerClient == 0 {
		l.MaxRPCMemoryPerClient = l.MaxRPCMemory / 4 * 3
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = int(v.memoryLimit / MemoryPerConnection)
	}
	if l.MaxConnectionsPerClient == 0 {
		l.MaxConnectionsPerClient = max(1, l.MaxConnections/4)
	}
	var errs []error
	largest := int64(o.maxRecvMsgSize) + admission.RequestOverhead + admission.ResponseQueue
	if l.MaxRPCMemoryPerClient < largest || l.MaxRPCMemory < largest {
		errs = append(errs, fmt.Errorf("WithMaxRPCMemory(%d) / WithMaxRPCMemoryPerClient(%d): want at least %d, the charge of one response stream with WithMaxRecvMsgSize(%d)", l.MaxRPCMemory, l.MaxRPCMemoryPerClient, largest, o.maxRecvMsgSize))
	}
	if l.MaxRPCMemoryPerClient > l.MaxRPCMemory {
		errs = append(errs, fmt.Errorf("WithMaxRPCMemoryPerClient(%d) exceeds WithMaxRPCMemory(%d)", l.MaxRPCMemoryPerClient, l.MaxRPCMemory))
	}
	if l.MaxConnectionsPerClient > l.MaxConnections {
		errs = append(errs, fmt.Errorf("WithMaxConnectionsPerClient(%d) exceeds WithMaxConnections(%d)", l.MaxConnectionsPerClient, l.MaxConnections))
	}
	return l, errors.Join(errs...)
}
