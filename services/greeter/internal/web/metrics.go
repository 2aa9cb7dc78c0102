package web

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type httpMetrics struct {
	requests *prometheus.CounterVec // by protocol, codec, HTTP status
	refused  *prometheus.CounterVec // by reason
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
	}
	for _, c := range []prometheus.Collector{m.requests, m.refused} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("register HTTP metrics"), err)
		}
	}
	for _, reason := range []string{reasonOrigin, reasonMalformed, reasonProtocol, reasonTooLarge, reasonAdmission, reasonUnknownMethod} {
		m.refused.WithLabelValues(reason)
	}
	return m, nil
}
