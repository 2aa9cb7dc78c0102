package rpcmethod

import (
	"testing"

	"google.golang.org/grpc/health/grpc_health_v1"
)

func TestHealthServiceIsGRPCs(t *testing.T) {
	if got := grpc_health_v1.Health_ServiceDesc.ServiceName; got != HealthService {
		t.Errorf("grpc-go's health service is %q, HealthService %q", got, HealthService)
	}
}

func TestSplit(t *testing.T) {
	for _, c := range []struct{ in, service, method string }{
		{"/acme.greeter.v1.GreeterService/SayHello", "acme.greeter.v1.GreeterService", "SayHello"},
		{"/grpc.health.v1.Health/Watch", "grpc.health.v1.Health", "Watch"},
		{"acme.greeter.v1.GreeterService/SayHello", "acme.greeter.v1.GreeterService", "SayHello"},
		{"/no-method", "unknown", "unknown"},
		{"", "unknown", "unknown"},
	} {
		service, method := Split(c.in)
		if service != c.service || method != c.method {
			t.Errorf("Split(%q) = %q, %q; want %q, %q", c.in, service, method, c.service, c.method)
		}
	}
}

func TestIsHealth(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"/grpc.health.v1.Health/Check", true},
		{"/grpc.health.v1.Health/Watch", true},
		{"/grpc.health.v1.Health/List", true},
		{"/grpc.health.v1.HealthX/Check", false},
		{"/grpc.health.v1.Health/", false},
		{"/grpc.health.v1.Health", false},
		{"/acme.greeter.v1.GreeterService/SayHello", false},
		{"grpc.health.v1.Health/Check", false},
		{"", false},
	} {
		if got := IsHealth(c.in); got != c.want {
			t.Errorf("IsHealth(%q) = %v, want %v", c.in, got, c.want)
		}
		service, _ := Split(c.in)
		if c.want && !IsHealthService(service) {
			t.Errorf("IsHealthService(%q) = false for %q", service, c.in)
		}
	}
}
