package server

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestChainUnary: the chain runs its interceptors outermost first, the
// added ones after the server's own, each given the call's info, and the
// handler last with what they passed on; an added interceptor may pass on
// any context, one of the server's own only one derived from its own.
func TestChainUnary(t *testing.T) {
	type ctxKey struct{}
	var ran []string
	record := func(name string, detach bool) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			ran = append(ran, name+" "+info.FullMethod)
			if detach {
				ctx = context.Background()
			}
			return handler(context.WithValue(ctx, ctxKey{}, name), req.(string)+" "+name)
		}
	}
	info := &grpc.UnaryServerInfo{FullMethod: "/m"}
	handler := func(ctx context.Context, req any) (any, error) {
		ran = append(ran, "handler")
		return req.(string) + " (ctx from " + ctx.Value(ctxKey{}).(string) + ")", nil
	}
	for _, tc := range []struct {
		name     string
		own      []grpc.UnaryServerInterceptor
		added    []grpc.UnaryServerInterceptor
		want     string
		wantRan  []string
		wantCode codes.Code
	}{
		{
			name:    "own only",
			own:     []grpc.UnaryServerInterceptor{record("a", false), record("b", false), record("c", false)},
			want:    "req a b c (ctx from c)",
			wantRan: []string{"a /m", "b /m", "c /m", "handler"},
		},
		{
			name:    "one own",
			own:     []grpc.UnaryServerInterceptor{record("a", false)},
			want:    "req a (ctx from a)",
			wantRan: []string{"a /m", "handler"},
		},
		{
			name:    "added after own, one detaching its context",
			own:     []grpc.UnaryServerInterceptor{record("a", false), record("b", false)},
			added:   []grpc.UnaryServerInterceptor{record("x", true), record("y", false)},
			want:    "req a b x y (ctx from y)",
			wantRan: []string{"a /m", "b /m", "x /m", "y /m", "handler"},
		},
		{
			name:     "own detaching its context",
			own:      []grpc.UnaryServerInterceptor{record("a", true), record("b", false)},
			wantRan:  []string{"a /m"},
			wantCode: codes.Internal,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ran = nil
			got, err := chainUnary(tc.own, tc.added)(context.Background(), "req", info, handler)
			if status.Code(err) != tc.wantCode {
				t.Fatalf("error %v, want code %v", err, tc.wantCode)
			}
			if err == nil && got != tc.want {
				t.Errorf("answered %q, want %q", got, tc.want)
			}
			if !slices.Equal(ran, tc.wantRan) {
				t.Errorf("ran %q, want %q", ran, tc.wantRan)
			}
		})
	}
}

// TestChainUnaryAllocates: a call through the server's own interceptors
// allocates once for the chain, whatever their number (grpc-go's chaining
// allocates once per interceptor).
func TestChainUnaryAllocates(t *testing.T) {
	pass := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return handler(ctx, req)
	}
	chain := chainUnary([]grpc.UnaryServerInterceptor{pass, pass, pass, pass, pass, pass, pass}, nil)
	info := &grpc.UnaryServerInfo{FullMethod: "/m"}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	if n := testing.AllocsPerRun(100, func() { _, _ = chain(context.Background(), nil, info, handler) }); n != 1 {
		t.Errorf("a call through 7 interceptors allocated %v times, want 1", n)
	}
}
