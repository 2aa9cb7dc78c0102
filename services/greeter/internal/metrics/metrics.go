// Package metrics owns the greeter's Prometheus registry and the admin HTTP
// endpoints served beside gRPC: /metrics, /healthz and /readyz.
package metrics

import (
	"fmt"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/acme/greeter/services/greeter/internal/admission"
)

// Metrics holds every collector the server reports.
type Metrics struct {
	// Registry is private to the process rather than the global default, so
	// tests can build many servers side by side.
	Registry *prometheus.Registry
	// GRPC counts RPCs by method and code, their latency and stream messages.
	GRPC *ServerMetrics
	// Panics counts handler panics turned into INTERNAL by recovery.
	Panics prometheus.Counter
	// Overload counts what the overload limits refused and reaped, and
	// holds what they bound now (package admission).
	Overload admission.Metrics
	// Limits holds the value of every overload limit in force, by flag, so
	// that dashboards and tests see what was derived from the memory limit.
	Limits *prometheus.GaugeVec
}

// HandlingBuckets are the upper bounds, in seconds, of the
// grpc_server_handling_seconds histogram: from half a millisecond for a
// unary call to a minute for a long stream.
var HandlingBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// New builds and registers the server's collectors, plus the Go runtime and
// process collectors.
func New() (*Metrics, error) {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		GRPC:     NewServerMetrics(HandlingBuckets),
		Panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "grpc_req_panics_recovered_total",
			Help: "Total number of gRPC requests whose handler panicked and was recovered.",
		}),
		Overload: admission.Metrics{
			StreamsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "greeter_streams_refused_total",
				Help: "RPCs refused before their handler started, by the limit they would have exceeded.",
			}, []string{"limit"}),
			StreamsReaped: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "greeter_streams_reaped_total",
				Help: "RPCs ended by the server for a slow client, by the timeout that ended them.",
			}, []string{"limit"}),
			ConnectionsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "greeter_connections_refused_total",
				Help: "Connections closed as soon as they were accepted, by the limit they would have exceeded.",
			}, []string{"limit"}),
			ConnectionsEvicted: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "greeter_connections_evicted_total",
				Help: "Idle connections closed to make room for a new one, from the address holding the most, by the limit that was full.",
			}, []string{"limit"}),
			RPCMemory: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "greeter_rpc_memory_bytes",
				Help: "Memory the RPCs in flight hold: the Go heap and goroutine stacks over what the server held at its start, sampled every 100ms.",
			}),
			MemoryPressure: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "greeter_memory_pressure",
				Help: "greeter_rpc_memory_bytes over the RPC memory budget (greeter_limit{limit=\"max-rpc-memory\"}): timeouts shorten past 0.5, the biggest client gives way past 1.",
			}),
			HealthStreams: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "greeter_health_streams",
				Help: "Health RPCs in flight.",
			}),
			Connections: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "greeter_connections",
				Help: "Open client connections.",
			}),
		},
		Limits: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "greeter_limit",
			Help: "The overload limits in force, by flag (bytes, counts, or seconds for timeouts).",
		}, []string{"limit"}),
	}
	for _, c := range []prometheus.Collector{
		m.GRPC,
		m.Panics,
		m.Overload.StreamsRefused,
		m.Overload.StreamsReaped,
		m.Overload.ConnectionsRefused,
		m.Overload.ConnectionsEvicted,
		m.Overload.RPCMemory,
		m.Overload.MemoryPressure,
		m.Overload.HealthStreams,
		m.Overload.Connections,
		m.Limits,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := m.Registry.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics collector: %w", err)
		}
	}
	return m, nil
}

// HandlerOption configures Handler.
type HandlerOption func(*handlerConfig)

type handlerConfig struct{ pprof bool }

// WithPprof adds Go's profiling endpoints (net/http/pprof) under
// /debug/pprof/. Off by default: profiles and command lines reveal
// internals, so only turn it on where the admin port is private.
func WithPprof() HandlerOption { return func(c *handlerConfig) { c.pprof = true } }

// Handler serves the admin endpoints:
//
//   - /metrics: Prometheus exposition of Registry;
//   - /healthz: liveness, 200 for as long as the process can answer;
//   - /readyz: readiness, 200 while ready reports true (serving) and 503
//     otherwise (starting or draining), so load balancers stop routing new
//     work before the gRPC listener closes.
func (m *Metrics) Handler(ready func() bool, opts ...HandlerOption) http.Handler {
	var cfg handlerConfig
	for _, o := range opts {
		o(&cfg)
	}
	mux := http.NewServeMux()
	if cfg.pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready() {
			writeText(w, http.StatusOK, "ready\n")
			return
		}
		writeText(w, http.StatusServiceUnavailable, "not ready\n")
	})
	return mux
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}
