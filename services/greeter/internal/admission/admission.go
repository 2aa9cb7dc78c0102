// Package admission bounds what the server holds for its clients, so that no
// client, however it behaves, can grow the server past its memory budget,
// while the server serves as much as that memory allows:
//
//   - RPCs are admitted on what the server actually holds: the Go heap and
//     goroutine stacks, read from runtime/metrics a few times a second
//     (pressure.go), against Limits.MaxRPCMemory. Each RPC in flight is
//     also charged an estimate of what it holds (RPCCost, and StalledCost
//     more while a send waits for a client that reads nothing), which
//     attributes the memory to clients;
//   - RPCs waiting for their first request message are counted apart
//     (Limits.MaxWaiting, a quarter of the budget at RPCCost each): once
//     that many wait, a client waiting on more than its share is refused,
//     and one within it admitted in the place of a call of the client
//     waiting on the most beyond its share, so a crowd opening streams and
//     sending nothing holds a bounded part of the budget, whatever its
//     size and however many addresses it comes from;
//   - from half the budget measured, garbage included, the garbage
//     collector's target is lowered (collector.go), so that a crowd's
//     refusals do not fill the memory with garbage;
//   - a client's share adapts to how many clients hold RPCs: while the
//     server has room, a lone client may use all of it; once it is short,
//     a client within its fair share (the budget over the clients holding
//     RPCs) is still admitted, one beyond it is refused RESOURCE_EXHAUSTED
//     with a google.rpc.RetryInfo, and the RPCs of the client holding the
//     most are shed (reaper.go) until the server is back within budget;
//   - a refused RPC holds nothing: it is refused from an interceptor
//     (tap.go, watch.go), never from grpc-go's tap handle, whose error path
//     leaves the stream's context and its deadline timer alive until the
//     client's grpc-timeout (grpc-go v1.85, http2_server.go operateHeaders);
//   - health RPCs are counted apart, by number (Limits.MaxHealthStreams),
//     Watch and Check each, so that probes are answered whatever the other
//     RPCs hold and a client's watchers do not starve its checks; at the
//     limit, a health RPC whose request never came, of the client holding
//     the most, is ended to make room, so a crowd holding health calls
//     open cannot fail a probe;
//   - at Limits.MaxConnections, or at Limits.MaxConnectionsPerClient from
//     one IP address, a new connection takes the place of the connection
//     idle longest (no RPC in flight), or holding longest (every RPC on it
//     waiting a second or more for its request), of the address holding
//     the most, or of its own address; at the server's limit, failing
//     those, of a connection with no RPC in flight just accepted, from an
//     address holding two more than the newcomer's, so that a crowd
//     dialing faster than a second does not refuse everyone while it
//     dials; only when there is none is the new one closed as soon as it
//     is accepted (listener.go). A connection of the gRPC port closed
//     to make room, or idle, is sent a GOAWAY first (goaway.go). A crowd
//     of idle connections,
//     or of connections holding calls open, never shuts the door on a
//     newcomer. Past the hard memory limit the count does not grow: a
//     new connection only takes an idle one's place;
//   - from half of Limits.MaxConnections open, a connection with no RPC in
//     flight is closed once idle for a timeout that shrinks with the
//     count, from a minute at half to a second at the cap, the one idle
//     longest first (idle.go), so that idle crowds give their places back
//     before a newcomer finds the server full;
//   - a response stream on the gRPC port may have QueuedPerStream messages
//     handed to grpc-go and not yet written to its connection, more while
//     all streams' together are fewer than QueuedShared; past that its
//     next send waits (outbound.go), so what a client that reads nothing
//     can make the server queue is bounded before it is queued, not found
//     at the next memory sample;
//   - an RPC whose first request message has not arrived within
//     Limits.FirstMessageTimeout is cancelled, and a connection on which a
//     send has waited on flow control for Limits.SendStallTimeout is closed;
//     both timeouts shrink as memory fills (Envoy's reduce_timeouts), down
//     to a tenth at the budget, so that holders are shed first and quickly.
//
// Every refusal, shed RPC and connection closed to make room is counted
// (Metrics) and logged, at most one line a second.
//
// A client is its mTLS certificate subject, else its IP address, as for the
// rate limit (ratelimit.ClientKey); connections are counted by IP address,
// the only identity known when one is accepted.
package admission

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// What an RPC is estimated to hold, measured against the real binary
// (docs/performance.md, "Figures behind the code"; test/e2e/overload).
// The estimates attribute memory to clients; what is measured decides.
const (
	// RPCCost is what an RPC in flight holds: its goroutine's stack,
	// grpc-go's stream state and the interceptors'.
	RPCCost = 16 << 10
	// StalledCost is what an RPC holds more while its send waits on a
	// client that reads nothing: what grpc-go queues for it (up to 64 KiB
	// of message bytes, each message with its frame and buffers) and its
	// receive window.
	StalledCost = 1 << 20
	// HardLimitPercent is where, as a percentage of --max-rpc-memory,
	// every RPC is refused UNAVAILABLE while shedding catches up; below
	// it, only clients beyond their share are.
	HardLimitPercent = 125
	// ConnectionCost is what an open connection costs without its RPCs:
	// measured from outside, RSS grows 21.3 KiB per idle connection on
	// the gRPC port (three goroutines: reader, writer, keepalive) and
	// 16.3 KiB on the HTTP port (h2c), rounded up with headroom
	// (docs/reliability.md, "Measured: the idle crowd"); its read and
	// write buffers (32 KiB each) are taken from pools only while it is
	// busy.
	ConnectionCost = 32 << 10
	// HealthCost is what a health RPC may cost: a small request, and
	// responses sent only when the status changes.
	HealthCost = 32 << 10
)

// Limits are the bounds a Controller enforces. Zero values mean no limit for
// the counts and no timeout for the durations; see the server's options for
// the defaults.
type Limits struct {
	// MaxRPCMemory is the memory RPCs may hold: the Go heap and stacks
	// above what the server held when it started.
	MaxRPCMemory int64
	// MaxRPCMemoryPerClient, if not 0, caps one client's estimated
	// holdings whatever the server's room; 0 leaves only the adaptive
	// share.
	MaxRPCMemoryPerClient   int64
	MaxHealthStreams        int
	MaxHealthPerClient      int
	MaxConnections          int
	MaxConnectionsPerClient int
	// MaxWaiting, if not 0, is how many admitted RPCs may wait for their
	// first request message at once before a client waiting on more than
	// its share (MaxWaiting over the clients holding RPCs) is refused: a
	// well-behaved client sends its request with its headers, so many
	// calls waiting are a crowd holding streams open, and each holds a
	// goroutine in its handler.
	MaxWaiting          int
	FirstMessageTimeout time.Duration
	SendStallTimeout    time.Duration
}

// Metrics are where a Controller counts what it refused and reaped.
type Metrics struct {
	StreamsRefused     *prometheus.CounterVec // by limit
	StreamsReaped      *prometheus.CounterVec // by limit
	ConnectionsRefused *prometheus.CounterVec // by limit
	// ConnectionsEvicted counts the idle connections closed to make room
	// for a new one, by the limit that was full, and those closed idle
	// past the idle timeout (LimitIdleTimeout).
	ConnectionsEvicted *prometheus.CounterVec
	RPCMemory          prometheus.Gauge // bytes held by RPCs (measured)
	MemoryPressure     prometheus.Gauge // RPCMemory / MaxRPCMemory
	HealthStreams      prometheus.Gauge
	Connections        prometheus.Gauge
}

// The label values of the metrics: the flag of each limit.
const (
	LimitMaxRPCMemory            = "max-rpc-memory"
	LimitMaxRPCMemoryPerClient   = "max-rpc-memory-per-client"
	LimitMaxHealthStreams        = "max-health-streams"
	LimitMaxConnections          = "max-connections"
	LimitMaxConnectionsPerClient = "max-connections-per-client"
	LimitFirstMessageTimeout     = "first-message-timeout"
	LimitSendStallTimeout        = "send-stall-timeout"
	// LimitWaiting is Limits.MaxWaiting's: derived from --max-rpc-memory,
	// not a flag of its own.
	LimitWaiting = "waiting-for-request"
	// LimitIdleTimeout counts the connections closed for having no RPC
	// in flight for longer than the idle timeout, which shrinks as the
	// count nears MaxConnections (idleTimeout): derived from
	// --max-connections, not a flag of its own.
	LimitIdleTimeout = "idle-timeout"
)

// RetryAfter is the delay a client over its share is told to wait
// (RetryInfo): RPCs in flight end on their own schedule, so there is no
// better estimate than "soon".
const RetryAfter = time.Second

// ErrFirstMessageTimeout is the cause of the cancellation of an RPC whose
// request did not arrive in time.
var ErrFirstMessageTimeout = errors.New("no complete request message within the first-message timeout")

var (
	errSendStalled    = errors.New("the client read nothing for the send-stall timeout: connection closed")
	errRefused        = errors.New("refused, and its request did not arrive")
	errHealthEvicted  = errors.New("ended to make room for another health call: its request did not arrive")
	errMadeRoom       = errors.New("ended to make room, past the hard memory limit, for a client within its share: its request did not arrive")
	errWaitingEvicted = errors.New("ended to make room for a client within its share of the calls that may wait for their request: its request did not arrive")
)
