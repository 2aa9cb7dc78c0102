package ratelimit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestBucket(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := New(2, 3, WithClock(c.now)) // 2/s, burst 3
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("call %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th call: %v, retry %v; want refused, retry 500ms", ok, wait)
	}
	// A refused call takes no token: the wait does not grow.
	if _, again := l.Allow("a"); again != wait {
		t.Fatalf("retry after a refused call %v, want %v", again, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another client was limited by the first one's calls")
	}
	c.advance(wait)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("refused after waiting the advertised delay")
	}
}

func TestDefaultBurst(t *testing.T) {
	for _, tt := range []struct {
		rate float64
		want int
	}{{0.5, 1}, {1, 1}, {2.5, 3}, {100, 100}} {
		if got := New(tt.rate, 0).burst; got != tt.want {
			t.Errorf("New(%v, 0).burst = %d, want %d", tt.rate, got, tt.want)
		}
	}
}

func TestClientsBounded(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := New(1, 1, WithClock(c.now), WithMaxClients(100))
	for i := range 1000 {
		l.Allow(net.IPv4(10, 0, byte(i>>8), byte(i)).String())
	}
	if n := l.Clients(); n != 100 {
		t.Fatalf("%d buckets kept, want the bound 100", n)
	}
	// The least recently used went first: the last client is still limited.
	if ok, _ := l.Allow(net.IPv4(10, 0, 3, 231).String()); ok {
		t.Fatal("the most recent client's bucket was evicted")
	}
	// Idle buckets (refilled: burst/rate = 1s) are dropped.
	c.advance(time.Second)
	l.Allow("new")
	if n := l.Clients(); n != 1 {
		t.Fatalf("%d buckets after every other client went idle, want 1", n)
	}
}

func withPeer(ctx context.Context, addr net.Addr, certs ...*x509.Certificate) context.Context {
	p := &peer.Peer{Addr: addr}
	if len(certs) > 0 {
		p.AuthInfo = credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: certs}}
	}
	return peer.NewContext(ctx, p)
}

func TestClientKey(t *testing.T) {
	tcp := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 41000}
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "alice", Organization: []string{"Acme"}}}
	for _, tt := range []struct {
		desc string
		ctx  context.Context
		want string
	}{
		{"IP, port ignored", withPeer(t.Context(), tcp), "ip:192.0.2.7"},
		{"mTLS subject", withPeer(t.Context(), tcp, cert), "cert:CN=alice,O=Acme"},
		{"no peer", t.Context(), "unknown"},
	} {
		if got := ClientKey(tt.ctx); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.desc, got, tt.want)
		}
	}
}

func TestInterceptors(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := New(1, 1, WithClock(c.now))
	ctx := withPeer(t.Context(), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1})
	unary := l.UnaryServerInterceptor()
	ok := func(context.Context, any) (any, error) { return "ok", nil }
	info := &grpc.UnaryServerInfo{FullMethod: "/acme.greeter.v1.GreeterService/SayHello"}
	if _, err := unary(ctx, nil, info, ok); err != nil {
		t.Fatal(err)
	}
	_, err := unary(ctx, nil, info, ok)
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("over the limit: %v, want ResourceExhausted", err)
	}
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() != time.Second {
		t.Fatalf("RetryInfo %v, want a 1s retry delay", retry)
	}
	// Health checks are exempt.
	health := &grpc.UnaryServerInfo{FullMethod: "/grpc.health.v1.Health/Check"}
	for range 5 {
		if _, err := unary(ctx, nil, health, ok); err != nil {
			t.Fatalf("health check limited: %v", err)
		}
	}
	stream := l.StreamServerInterceptor()
	sinfo := &grpc.StreamServerInfo{FullMethod: "/acme.greeter.v1.GreeterService/SayHelloChat"}
	called := false
	err = stream(nil, fakeStream{ctx: ctx}, sinfo, func(any, grpc.ServerStream) error { called = true; return nil })
	if status.Code(err) != codes.ResourceExhausted || called {
		t.Fatalf("stream over the limit: %v (handler called %v)", err, called)
	}
	c.advance(time.Second)
	if err := stream(nil, fakeStream{ctx: ctx}, sinfo, func(any, grpc.ServerStream) error { called = true; return nil }); err != nil || !called {
		t.Fatalf("stream after the delay: %v", err)
	}
	if err := stream(nil, fakeStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: "/grpc.health.v1.Health/Watch"}, func(any, grpc.ServerStream) error { return nil }); err != nil {
		t.Fatalf("health watch limited: %v", err)
	}
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (f fakeStream) Context() context.Context { return f.ctx }
