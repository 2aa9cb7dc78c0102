package dial

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// replicaScheme is the scheme of the in-process resolver that serves a
// comma-separated --addr list.
const replicaScheme = "greetctl-replicas"

// AddrFormats documents what --addr accepts, for flag help.
const AddrFormats = `host:port; a gRPC target URI such as dns:///host:port or unix:///path; ` +
	`or a comma-separated list of host:port replicas`

// Target is a parsed --addr.
type Target struct {
	// URI is what grpc.NewClient dials.
	URI string
	// Loopback reports that every address is on this machine, where
	// plaintext is the default.
	Loopback bool
	// resolver serves a replica list; nil for a single address or URI.
	resolver *manual.Resolver
}

// ParseTarget parses addr, see AddrFormats.
func ParseTarget(addr string) (Target, error) {
	addr = strings.TrimSpace(addr)
	switch {
	case addr == "":
		return Target{}, fmt.Errorf("empty address: want %s", AddrFormats)
	case strings.Contains(addr, ","):
		return parseReplicas(addr)
	case strings.Contains(addr, ":/"):
		return parseURI(addr)
	}
	host, err := splitHostPort(addr)
	if err != nil {
		return Target{}, err
	}
	// dns:/// is grpc.NewClient's default scheme too; spelling it out keeps
	// "host:port" from being read as a URI with scheme "host".
	return Target{URI: "dns:///" + addr, Loopback: isLoopback(host)}, nil
}

func parseReplicas(addr string) (Target, error) {
	var endpoints []resolver.Endpoint
	loopback := true
	for a := range strings.SplitSeq(addr, ",") {
		a = strings.TrimSpace(a)
		host, err := splitHostPort(a)
		if err != nil {
			return Target{}, fmt.Errorf("replica list: %w", err)
		}
		loopback = loopback && isLoopback(host)
		// ServerName makes TLS verify each replica under its own name
		// rather than the made-up authority of the list.
		endpoints = append(endpoints, resolver.Endpoint{
			Addresses: []resolver.Address{{Addr: a, ServerName: host}},
		})
	}
	r := manual.NewBuilderWithScheme(replicaScheme)
	r.InitialState(resolver.State{Endpoints: endpoints})
	return Target{URI: replicaScheme + ":///replicas", Loopback: loopback, resolver: r}, nil
}

func parseURI(addr string) (Target, error) {
	u, err := url.Parse(addr)
	if err != nil || u.Scheme == "" {
		return Target{}, fmt.Errorf("malformed target URI %q: want %s", addr, AddrFormats)
	}
	t := Target{URI: addr}
	switch u.Scheme {
	case "unix", "unix-abstract":
		t.Loopback = true
	case "dns", "passthrough":
		endpoint := strings.TrimPrefix(u.Path, "/")
		if u.Opaque != "" {
			endpoint = u.Opaque
		}
		if host, err := splitHostPort(endpoint); err == nil {
			t.Loopback = isLoopback(host)
		}
	}
	return t, nil
}

func splitHostPort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "", fmt.Errorf("malformed address %q: want host:port, e.g. localhost:50051 or [::1]:50051", addr)
	}
	return host, nil
}

// isLoopback reports whether host certainly names this machine: localhost,
// 127.0.0.0/8 or ::1. Other names are not resolved: a name that resolves to
// a loopback address today may not tomorrow.
func isLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
