// Package ratelimit limits how many RPCs each client may start per second:
// one token bucket (golang.org/x/time/rate) per client, keyed by the
// client's mTLS certificate subject when it presented one, by its IP
// address otherwise. It is off unless --rate-limit is set.
//
// A call over the limit is answered RESOURCE_EXHAUSTED with a
// google.rpc.RetryInfo detail whose retry_delay is when the client's bucket
// will hold a token again. Every RPC counts once when it starts, streams
// included; health checks are exempt, so probes and client-side health
// checking never compete with traffic.
//
// Limiter implements go-grpc-middleware v2's ratelimit.Limiter, but its own
// interceptors are used instead of that package's: the middleware rewraps
// the Limiter's error with status.Errorf(codes.ResourceExhausted, "...%s",
// err), which keeps only the text, so a RetryInfo detail could not reach the
// client.
//
// Memory is bounded: at most MaxClients buckets are kept, least recently
// used first out, and a bucket idle long enough to have refilled is dropped
// (that loses nothing: a new bucket is full too). With more active clients
// than MaxClients, the least recent ones get a fresh bucket when they come
// back — the limiter fails open rather than growing without bound.
package ratelimit

import (
	"container/list"
	"context"
	"fmt"
	"math"
	"net"
	"sync"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/acme/greeter/services/greeter/internal/rpcmethod"
)

// DefaultMaxClients bounds the buckets kept.
const DefaultMaxClients = 10_000

// minIdle is the shortest time a bucket is kept after its last use.
const minIdle = time.Second

// Limiter holds one token bucket per client.
type Limiter struct {
	limit      rate.Limit
	burst      int
	maxClients int
	idle       time.Duration
	now        func() time.Time

	mu      sync.Mutex
	clients map[string]*list.Element // of *bucket
	lru     list.List                // most recently used at the front
}

type bucket struct {
	key  string
	lim  *rate.Limiter
	last time.Time
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// Option configures a Limiter.
type Option func(*Limiter)

// WithMaxClients bounds how many clients' buckets are kept (default
// DefaultMaxClients).
func WithMaxClients(n int) Option { return func(l *Limiter) { l.maxClients = max(n, 1) } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(l *Limiter) { l.now = now } }

// New returns a limiter allowing each client perSecond RPCs per second on
// average and burst at once. burst < 1 means perSecond rounded up, at least 1.
func New(perSecond float64, burst int, opts ...Option) *Limiter {
	if burst < 1 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	l := &Limiter{
		limit:      rate.Limit(perSecond),
		burst:      burst,
		maxClients: DefaultMaxClients,
		now:        time.Now,
		clients:    map[string]*list.Element{},
	}
	// A bucket left alone this long is full again, as good as a new one.
	l.idle = minIdle
	if perSecond > 0 {
		l.idle = max(minIdle, time.Duration(float64(burst)/perSecond*float64(time.Second)))
	}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Clients is how many buckets are kept now.
func (l *Limiter) Clients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// Allow takes a token from key's bucket. If there is none, it takes
// nothing and returns how long until there will be one.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evictIdle(now)
	var b *bucket
	if e, found := l.clients[key]; found {
		b = e.Value.(*bucket)
		l.lru.MoveToFront(e)
	} else {
		if len(l.clients) >= l.maxClients {
			oldest := l.lru.Back()
			delete(l.clients, oldest.Value.(*bucket).key)
			l.lru.Remove(oldest)
		}
		b = &bucket{key: key, lim: rate.NewLimiter(l.limit, l.burst)}
		l.clients[key] = l.lru.PushFront(b)
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second // burst < 1 cannot happen; be safe
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// evictIdle drops buckets unused for l.idle, from the least recent.
func (l *Limiter) evictIdle(now time.Time) {
	for e := l.lru.Back(); e != nil; e = l.lru.Back() {
		b := e.Value.(*bucket)
		if now.Sub(b.last) < l.idle {
			return
		}
		delete(l.clients, b.key)
		l.lru.Remove(e)
	}
}

// Limit implements go-grpc-middleware's ratelimit.Limiter: nil, or
// RESOURCE_EXHAUSTED with RetryInfo for the client of ctx.
func (l *Limiter) Limit(ctx context.Context) error {
	ok, wait := l.Allow(ClientKey(ctx))
	if ok {
		return nil
	}
	st := status.New(codes.ResourceExhausted,
		fmt.Sprintf("rate limit exceeded: %g requests/s per client (burst %d); retry in %s", float64(l.limit), l.burst, wait.Round(time.Millisecond)))
	detailed, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(wait)})
	if err != nil {
		return st.Err()
	}
	return detailed.Err()
}

// ClientKey identifies the client of ctx: "cert:" and the subject of the
// certificate it presented (mutual TLS), or "ip:" and its IP address.
func ClientKey(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "unknown"
	}
	if tlsInfo, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(tlsInfo.State.PeerCertificates) > 0 {
		return "cert:" + tlsInfo.State.PeerCertificates[0].Subject.String()
	}
	if p.Addr == nil {
		return "unknown"
	}
	addr := p.Addr.String()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return "ip:" + host
	}
	return "addr:" + addr
}

// UnaryServerInterceptor rejects unary calls over the client's limit.
func (l *Limiter) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !rpcmethod.IsHealth(info.FullMethod) {
			if err := l.Limit(ctx); err != nil {
				return nil, err
			}
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor rejects streams over the client's limit when
// they start; messages on an accepted stream are not limited.
func (l *Limiter) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !rpcmethod.IsHealth(info.FullMethod) {
			if err := l.Limit(ss.Context()); err != nil {
				return err
			}
		}
		return handler(srv, ss)
	}
}
