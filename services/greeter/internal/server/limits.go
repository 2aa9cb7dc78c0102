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
	// MemoryPerConnection is what WithMaxConnections's default plans per
	// connection, 32 KiB (admission.ConnectionCost): an idle connection
	// measurably costs 21.3 KiB on the gRPC port and 16.3 KiB on the HTTP
	// port, rounded up with headroom (docs/reliability.md, "Measured: the
	// idle crowd"). It was a 512 KiB worst case, which capped a 256 MiB
	// server at 512 connections, fewer than a crowd can hold idle.
	MemoryPerConnection = admission.ConnectionCost
	// ConnectionMemoryShare is the share of the memory limit that
	// WithMaxConnections's default lets connections take at
	// MemoryPerConnection each: a quarter, 64 MiB of 256 MiB. Their memory
	// is part of what WithMaxRPCMemory measures, so a crowd at the cap
	// leaves RPCs the rest of that budget rather than growing past it.
	ConnectionMemoryShare = 0.25
	// DefaultRPCMemoryShare is the share of the memory limit RPCs may hold
	// by default (WithMaxRPCMemory): what is left is the runtime's
	// baseline, health, and the garbage GOMEMLIMIT (90% of the limit) lets
	// the collector keep.
	DefaultRPCMemoryShare = 0.6
	// minRPCMemory is the least WithMaxRPCMemory: one stalled stream.
	minRPCMemory = admission.RPCCost + admission.StalledCost
	// DefaultMaxHealthStreams is WithMaxHealthStreams's default.
	DefaultMaxHealthStreams = 64
	// DefaultFirstMessageTimeout is WithFirstMessageTimeout's default.
	DefaultFirstMessageTimeout = 10 * time.Second
	// DefaultSendStallTimeout is WithSendStallTimeout's default.
	DefaultSendStallTimeout = 30 * time.Second
	// streamWindow is every stream's HTTP/2 receive window on both ports,
	// fixed (grpc.StaticStreamWindowSize: grpc-go's InitialWindowSize no
	// longer turns its bandwidth estimate off): grpc-go would otherwise
	// grow windows with that estimate, up to 16 MiB per stream, which a
	// client can provoke and then leave unread.
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
	maxRPCMemory            int64 // 0: memoryLimit * DefaultRPCMemoryShare
	maxRPCMemoryPerClient   int64 // 0: no fixed cap, the adaptive share
	maxHealthStreams        int
	maxConnections          int // 0: memoryLimit / 4 / 32 KiB
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

// WithMaxRPCMemory sets the memory, in bytes, RPCs in flight may hold
// (health apart), measured: the Go heap and goroutine stacks over what the
// server held at its start, read every 100ms from runtime/metrics. Within
// it every RPC is admitted; beyond it, only those of clients within their
// fair share (WithMaxRPCMemoryPerClient), the RPCs of the client holding
// the most are shed (RESOURCE_EXHAUSTED with a RetryInfo), and past a
// quarter over it every RPC is refused UNAVAILABLE until shedding catches
// up. From half of it, WithFirstMessageTimeout and WithSendStallTimeout
// shorten, down to a tenth at it. The default, 0, is DefaultRPCMemoryShare
// of the memory limit (WithMemoryLimit): 153.6 MiB for 256 MiB, which
// 10,000 slow response streams fit (docs/reliability.md). n must not be
// negative.
func WithMaxRPCMemory(n int64) Option {
	return derivable("WithMaxRPCMemory", n, func(o *options) { o.overload.maxRPCMemory = n })
}

// WithMaxRPCMemoryPerClient caps what one client (mTLS certificate subject,
// else IP address) may hold, estimated per RPC (admission.RPCCost, and
// admission.StalledCost more while its sends wait on a client that reads
// nothing), whatever room the server has; an RPC beyond it is refused
// RESOURCE_EXHAUSTED with a RetryInfo. The default, 0, sets no fixed cap:
// a client's share adapts to how many clients hold RPCs — a lone client
// may use all of WithMaxRPCMemory, and once the server is short each is
// owed the budget over the clients holding RPCs, the client holding the
// most giving way first. n must not be negative.
func WithMaxRPCMemoryPerClient(n int64) Option {
	return derivable("WithMaxRPCMemoryPerClient", n, func(o *options) { o.overload.maxRPCMemoryPerClient = n })
}

// WithMaxHealthStreams sets how many health Watch streams, and apart how
// many health Check calls, (grpc.health.v1) may be in flight; they are not
// charged to WithMaxRPCMemory, so probes are answered however much the
// other RPCs hold. One client may hold an eighth of each (at least 1), so
// its watchers never starve its checks. The default is
// DefaultMaxHealthStreams, 64. n must be positive.
func WithMaxHealthStreams(n int) Option {
	return positive("WithMaxHealthStreams", n, func(o *options) { o.overload.maxHealthStreams = n })
}

// WithMaxConnections sets how many client connections may be open, on
// both ports together. At the limit a new connection takes the place of
// the one idle longest (no RPC in flight for a second) of the address
// holding the most, and is closed as soon as it is accepted only if none
// is idle; from half of it, connections idle longer than a timeout that
// shrinks with the count (a minute at half, a second at the limit) are
// closed. The default, 0, is ConnectionMemoryShare of the memory limit
// at MemoryPerConnection each: 2,048 for 256 MiB. n must not be negative.
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
	}
	if l.MaxRPCMemory == 0 {
		l.MaxRPCMemory = int64(float64(v.memoryLimit) * DefaultRPCMemoryShare)
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = int(float64(v.memoryLimit) * ConnectionMemoryShare / MemoryPerConnection)
	}
	if l.MaxConnectionsPerClient == 0 {
		l.MaxConnectionsPerClient = max(1, l.MaxConnections/4)
	}
	// A quarter of the RPC budget, at what an RPC holds, for the RPCs
	// waiting for their request.
	l.MaxWaiting = int(max(1, l.MaxRPCMemory/4/admission.RPCCost))
	var errs []error
	if l.MaxRPCMemory < minRPCMemory || (l.MaxRPCMemoryPerClient != 0 && l.MaxRPCMemoryPerClient < minRPCMemory) {
		errs = append(errs, fmt.Errorf("WithMaxRPCMemory(%d) / WithMaxRPCMemoryPerClient(%d): want at least %d (1 MiB + 16 KiB), room for a stalled response stream", l.MaxRPCMemory, l.MaxRPCMemoryPerClient, minRPCMemory))
	}
	if l.MaxRPCMemoryPerClient > l.MaxRPCMemory {
		errs = append(errs, fmt.Errorf("WithMaxRPCMemoryPerClient(%d) exceeds WithMaxRPCMemory(%d)", l.MaxRPCMemoryPerClient, l.MaxRPCMemory))
	}
	if l.MaxConnectionsPerClient > l.MaxConnections {
		errs = append(errs, fmt.Errorf("WithMaxConnectionsPerClient(%d) exceeds WithMaxConnections(%d)", l.MaxConnectionsPerClient, l.MaxConnections))
	}
	return l, errors.Join(errs...)
}
