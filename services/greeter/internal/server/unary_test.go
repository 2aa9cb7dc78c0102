package server

import (
	"context"
	"slices"
	"strings"
	"testing"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/gen/go/helloworld"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// unaryRPCs are the four unary RPCs of the two contracts, as functions of a
// name.
func unaryRPCs(h *harness) map[string]func(ctx context.Context, name string, opts ...grpc.CallOption) (string, error) {
	return map[string]func(context.Context, string, ...grpc.CallOption) (string, error){
		"GreeterService.SayHello": func(ctx context.Context, n string, o ...grpc.CallOption) (string, error) {
			r, err := h.greeter.SayHello(ctx, &greeterv1.SayHelloRequest{Name: n}, o...)
			return r.GetMessage(), err
		},
		"GreeterService.SayHelloAgain": func(ctx context.Context, n string, o ...grpc.CallOption) (string, error) {
			r, err := h.greeter.SayHelloAgain(ctx, &greeterv1.SayHelloAgainRequest{Name: n}, o...)
			return r.GetMessage(), err
		},
		"helloworld.SayHello": func(ctx context.Context, n string, o ...grpc.CallOption) (string, error) {
			r, err := h.classic.SayHello(ctx, &helloworld.HelloRequest{Name: n}, o...)
			return r.GetMessage(), err
		},
		"helloworld.SayHelloAgain": func(ctx context.Context, n string, o ...grpc.CallOption) (string, error) {
			r, err := h.classic.SayHelloAgain(ctx, &helloworld.HelloRequest{Name: n}, o...)
			return r.GetMessage(), err
		},
	}
}

func TestUnaryGreetings(t *testing.T) {
	h := start(t)
	rpcs := unaryRPCs(h)
	tests := []struct {
		rpc, name, want string
	}{
		{"GreeterService.SayHello", "Ada", "Hello, Ada!"},
		{"GreeterService.SayHello", "  Grace\u00a0", "Hello, Grace!"},
		{"GreeterService.SayHelloAgain", "Ada", "Hello again, Ada!"},
		{"helloworld.SayHello", " Linus ", "Hello, Linus!"},
		{"helloworld.SayHelloAgain", "Linus", "Hello again, Linus!"},
		{"helloworld.SayHello", strings.Repeat("ж", 100), "Hello, " + strings.Repeat("ж", 100) + "!"},
	}
	for _, tt := range tests {
		t.Run(tt.rpc+"/"+tt.name, func(t *testing.T) {
			got, err := rpcs[tt.rpc](t.Context(), tt.name)
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestUnaryValidation checks every unary RPC of both contracts rejects each
// kind of bad name with the same violation: helloworld has no rules of its
// own and must behave exactly like GreeterService.
func TestUnaryValidation(t *testing.T) {
	h := start(t)
	tests := []struct {
		desc, name string
		want       violation
	}{
		{"empty", "", violation{"name", "required"}},
		{"too long", strings.Repeat("a", 101), violation{"name", "string.max_len"}},
		{"blank", " \t\u2003", violation{"name", "name.not_blank"}},
		{"control character", "Ada\nLovelace", violation{"name", "name.no_control_characters"}},
		{"NUL", "Ada\x00", violation{"name", "name.no_control_characters"}},
	}
	for _, tt := range tests {
		for rpc, call := range unaryRPCs(h) {
			t.Run(tt.desc+"/"+rpc, func(t *testing.T) {
				_, err := call(t.Context(), tt.name)
				got := badRequest(t, err)
				if !slices.Contains(got, tt.want) {
					t.Fatalf("violations %v, want %v", got, tt.want)
				}
			})
		}
	}
}

func TestHealth(t *testing.T) {
	h := start(t)
	for _, svc := range Services {
		t.Run(svc, func(t *testing.T) {
			var header metadata.MD
			resp, err := h.health.Check(t.Context(), &healthpb.HealthCheckRequest{Service: svc}, grpc.Header(&header))
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("status %v, want SERVING", resp.GetStatus())
			}
			if got := header.Get(VersionHeader); len(got) != 1 || got[0] != "v9.9.9 (abc123)" {
				t.Errorf("%s header = %q, want the server version", VersionHeader, got)
			}
		})
	}
	t.Run("greetings carry no version header", func(t *testing.T) {
		var header metadata.MD
		if _, err := h.greeter.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "Ada"}, grpc.Header(&header)); err != nil {
			t.Fatal(err)
		}
		if got := header.Get(VersionHeader); len(got) != 0 {
			t.Errorf("SayHello carried %s: %q", VersionHeader, got)
		}
	})
	if !h.srv.Ready() {
		t.Error("Ready() = false while serving")
	}
}
