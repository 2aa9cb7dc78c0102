package dial_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"

	"github.com/acme/greeter/clients/greetctl/internal/dial"
	"github.com/acme/greeter/clients/greetctl/internal/greettest"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		addr         string
		wantURI      string
		wantLoopback bool
		wantErr      string
	}{
		{addr: "localhost:50051", wantURI: "dns:///localhost:50051", wantLoopback: true},
		{addr: "127.0.0.1:50051", wantURI: "dns:///127.0.0.1:50051", wantLoopback: true},
		{addr: "127.1.2.3:50051", wantURI: "dns:///127.1.2.3:50051", wantLoopback: true},
		{addr: "[::1]:50051", wantURI: "dns:///[::1]:50051", wantLoopback: true},
		{addr: "greeter.example.com:443", wantURI: "dns:///greeter.example.com:443"},
		{addr: "10.0.0.1:50051", wantURI: "dns:///10.0.0.1:50051"},
		{addr: "dns:///localhost:50051", wantURI: "dns:///localhost:50051", wantLoopback: true},
		{addr: "dns:///greeter.example.com:443", wantURI: "dns:///greeter.example.com:443"},
		{addr: "dns://8.8.8.8/greeter.example.com:443", wantURI: "dns://8.8.8.8/greeter.example.com:443"},
		{addr: "passthrough:///127.0.0.1:1", wantURI: "passthrough:///127.0.0.1:1", wantLoopback: true},
		{addr: "unix:///run/greeter.sock", wantURI: "unix:///run/greeter.sock", wantLoopback: true},
		{addr: "xds:///greeter", wantURI: "xds:///greeter"},
		{addr: "127.0.0.1:1, localhost:2", wantURI: "greetctl-replicas:///replicas", wantLoopback: true},
		{addr: "127.0.0.1:1,10.0.0.1:2", wantURI: "greetctl-replicas:///replicas"},
		{addr: "", wantErr: "empty address"},
		{addr: "localhost", wantErr: "want host:port"},
		{addr: "localhost:", wantErr: "want host:port"},
		{addr: "127.0.0.1:1,", wantErr: "replica list"},
		{addr: "a:1,dns:///b:2", wantErr: "replica list"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got, err := dial.ParseTarget(tt.addr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.URI != tt.wantURI || got.Loopback != tt.wantLoopback {
				t.Errorf("got URI %q loopback %v, want %q %v", got.URI, got.Loopback, tt.wantURI, tt.wantLoopback)
			}
		})
	}
}

func TestServiceConfigIsJSON(t *testing.T) {
	for _, retry := range []bool{true, false} {
		var sc struct {
			LoadBalancingConfig []map[string]any `json:"loadBalancingConfig"`
			MethodConfig        []struct {
				RetryPolicy map[string]any `json:"retryPolicy"`
			} `json:"methodConfig"`
		}
		if err := json.Unmarshal([]byte(dial.ServiceConfig(retry)), &sc); err != nil {
			t.Fatalf("retry=%v: %v", retry, err)
		}
		if _, ok := sc.LoadBalancingConfig[0]["round_robin"]; !ok {
			t.Errorf("retry=%v: no round_robin", retry)
		}
		if got := len(sc.MethodConfig) == 1; got != retry {
			t.Errorf("retry=%v: method config present = %v", retry, got)
		}
	}
}

// TestRoundRobin checks that calls on one connection reach every replica of
// a list. Right after dialing not every replica is connected yet, so it
// calls until each has answered; pick_first would never get there.
func TestRoundRobin(t *testing.T) {
	servers := []*greettest.Server{
		greettest.Start(t, greettest.Options{}),
		greettest.Start(t, greettest.Options{}),
		greettest.Start(t, greettest.Options{}),
	}
	addrs := make([]string, len(servers))
	for i, s := range servers {
		addrs[i] = s.Addr
	}
	conn, err := dial.New(dial.Options{Addr: strings.Join(addrs, ",")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := greeterv1.NewGreeterServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	allCalled := func() bool {
		for _, s := range servers {
			if s.Calls() == 0 {
				return false
			}
		}
		return true
	}
	for !allCalled() {
		if _, err := client.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "Ada"}); err != nil {
			t.Fatalf("after %d, %d, %d calls: %v", servers[0].Calls(), servers[1].Calls(), servers[2].Calls(), err)
		}
	}
	// Once every replica is ready, the next calls rotate over all three.
	before := []int{servers[0].Calls(), servers[1].Calls(), servers[2].Calls()}
	for range 3 {
		if _, err := client.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "Ada"}); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range servers {
		if s.Calls() != before[i]+1 {
			t.Errorf("server %d got %d of the last 3 calls, want 1", i, s.Calls()-before[i])
		}
	}
}
