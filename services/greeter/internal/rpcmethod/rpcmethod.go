// Package rpcmethod holds the decisions every layer of the server makes
// about a gRPC method's full name ("/package.Service/Method"): how it splits
// into service and method, as logs and metrics label it, and whether it is a
// health call, which the rate limit exempts, admission keeps apart, the
// access log lowers to debug and tracing skips. One home, so the layers
// cannot disagree.
package rpcmethod

import "strings"

// HealthService is the service of health checks, grpc.health.v1.Health: a
// constant (grpc-go's Health_ServiceDesc.ServiceName is a variable), which
// the test holds to grpc-go's.
const HealthService = "grpc.health.v1.Health"

// Split splits "/package.Service/Method" into "package.Service" and
// "Method", as go-grpc-middleware labels them; a name without a slash after
// the leading one (grpc-go refuses such calls before any interceptor) is
// "unknown", "unknown".
func Split(fullMethod string) (service, method string) {
	fullMethod = strings.TrimPrefix(fullMethod, "/")
	if i := strings.IndexByte(fullMethod, '/'); i >= 0 {
		return fullMethod[:i], fullMethod[i+1:]
	}
	return "unknown", "unknown"
}

// IsHealthService reports whether service is the health service.
func IsHealthService(service string) bool { return service == HealthService }

// IsHealth reports whether fullMethod is a method of the health service
// (Check, List or Watch).
func IsHealth(fullMethod string) bool {
	return len(fullMethod) > len(HealthService)+2 && fullMethod[0] == '/' &&
		fullMethod[len(HealthService)+1] == '/' && fullMethod[1:len(HealthService)+1] == HealthService
}

// Join is the full name of method of service: "/package.Service/Method",
// as grpc-go names a method to interceptors and in the request path.
func Join(service, method string) string { return "/" + service + "/" + method }
