package web

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acme/greeter/services/greeter/internal/readmostly"
)

type httpMetrics struct {
	requests *prometheus.CounterVec // by protocol, codec, HTTP status
	// counters are requests' children by their labels: WithLabelValues
	// hashes its labels on every call.
	counters readmostly.Map[requestLabels, prometheus.Counter]
	refused  *prometheus.CounterVec // by reason
	// sendStalls counts the connections closed by the write watch.
	sendStalls prometheus.Counter
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greeter_http_requests_total",
			Help: "Requests on the HTTP port, by protocol (connect, connect-get, grpc-web, grpc-web-text, grpc, preflight, unknown), codec and HTTP status. The outcome of each call, whatever its protocol, is in grpc_server_handled_total.",
		}, []string{"protocol", "codec", "status"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greeter_http_refused_total",
			Help: "Requests on the HTTP port refused before they reached the gRPC server, by reason (origin, malformed, protocol, too-large, admission, unknown-method).",
		}, []string{"reason"}),
		sendStalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "greeter_http_send_stalls_total",
			Help: "Connections on the HTTP port closed because a write to them waited longer than the send-stall timeout on a client that read nothing.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.refused, m.sendStalls} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("register HTTP metrics"), err)
		}
	}
	for _, reason := range []string{reasonOrigin, reasonMalformed, reasonProtocol, reasonTooLarge, reasonAdmission, reasonUnknownMethod} {
		m.refused.WithLabelValues(reason)
	}
	return m, nil
}

type requestLabels struct {
	protocol, codec string
	status          int
}

// request is the counter of requests of protocol and codec answered with
// status.
func (m *httpMetrics) request(protocol, codec string, status int) prometheus.Counter {
	key := requestLabels{protocol, codec, status}
	if c, ok := m.counters.Load(key); ok {
		return c
	}
	return m.counters.LoadOrMake(key, func() prometheus.Counter {
		return m.requests.WithLabelValues(protocol, codec, strconv.Itoa(status))
	})
}
