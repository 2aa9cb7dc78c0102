// Package scaling holds the helpers of the end-to-end client-side load
// balancing tests: a round_robin client with health checking over a fixed
// replica list (what dns:/// over a headless Service gives a client in
// Kubernetes), and a reader of the servers' Prometheus counters.
package scaling

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health" // client-side health checking (healthCheckConfig)
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// ServiceConfig balances round_robin over every address and, through
// grpc.health.v1 Watch, takes out of the rotation any replica that reports
// healthService NOT_SERVING: a draining greeter does so at once, while it
// still accepts RPCs for --drain-delay.
func ServiceConfig(healthService string) string {
	return fmt.Sprintf(`{
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": %q}
}`, healthService)
}

// NewRoundRobinClient returns a plaintext client over addrs, resolved by a
// manual resolver, balanced and health-checked by ServiceConfig. The
// resolver is returned to change the address list.
func NewRoundRobinClient(addrs []string, healthService string, opts ...grpc.DialOption) (*grpc.ClientConn, *manual.Resolver, error) {
	r := manual.NewBuilderWithScheme("greeter-scaling")
	var eps []resolver.Endpoint
	for _, a := range addrs {
		eps = append(eps, resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}})
	}
	r.InitialState(resolver.State{Endpoints: eps})
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(r),
		grpc.WithDefaultServiceConfig(ServiceConfig(healthService)),
	}, opts...)
	conn, err := grpc.NewClient(r.Scheme()+":///greeter", opts...)
	if err != nil {
		return nil, nil, err
	}
	return conn, r, nil
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}\s+(\S+)`)
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// Counter reads one sample of the Prometheus text exposition at
// http://metricsAddr/metrics: the metric name with exactly the given labels
// among its own (others may be present). A sample that is absent reads 0.
func Counter(ctx context.Context, metricsAddr, name string, want map[string]string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+metricsAddr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil || m[1] != name {
			continue
		}
		got := map[string]string{}
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			got[p[1]] = p[2]
		}
		match := true
		for k, v := range want {
			match = match && got[k] == v
		}
		if match {
			return strconv.ParseFloat(m[3], 64)
		}
	}
	return 0, sc.Err()
}

// SayHelloOK is how many acme.greeter.v1.GreeterService/SayHello calls the
// server at metricsAddr answered OK, from grpc_server_handled_total.
func SayHelloOK(ctx context.Context, metricsAddr string) (int, error) {
	v, err := Counter(ctx, metricsAddr, "grpc_server_handled_total", map[string]string{
		"grpc_service": "acme.greeter.v1.GreeterService",
		"grpc_method":  "SayHello",
		"grpc_code":    "OK",
	})
	return int(v), err
}
