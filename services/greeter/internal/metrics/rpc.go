package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acme/greeter/services/greeter/internal/readmostly"
	"github.com/acme/greeter/services/greeter/internal/rpcmethod"
)

// ServerMetrics counts RPCs by method and code, their latency and their
// stream messages, exactly as go-grpc-middleware's providers/prometheus
// server metrics (v1.1.1) do with a handling-time histogram: the same
// series, names, help, labels and values (TestSameAsGoGRPCMiddleware runs
// both side by side). The greeter used that provider first; this replaces
// it because the provider looks each series up by its label values on
// every call and on every stream message — several hashes of the method
// name per call, a share of the server's CPU that profiles show
// (docs/performance.md, "Figures behind the code") — where the labels of a method never
// change: here each method's series are resolved once, when the server's
// methods are registered (InitializeMetrics), and an RPC only adds to them.
type ServerMetrics struct {
	started  *prometheus.CounterVec
	handled  *prometheus.CounterVec
	received *prometheus.CounterVec
	sent     *prometheus.CounterVec
	handling *prometheus.HistogramVec

	methods readmostly.Map[string, *methodSeries]
}

// methodSeries are the series of one method.
type methodSeries struct {
	typ, service, method string
	started              prometheus.Counter
	received, sent       prometheus.Counter
	handling             prometheus.Observer
	handled              [numCodes]prometheus.Counter
}

// numCodes is the number of gRPC status codes, OK to Unauthenticated.
const numCodes = 17

// RPC types, the values of the grpc_type label.
const (
	typeUnary        = "unary"
	typeClientStream = "client_stream"
	typeServerStream = "server_stream"
	typeBidiStream   = "bidi_stream"
)

// NewServerMetrics returns the collectors, with handling-time buckets
// (seconds) buckets.
func NewServerMetrics(buckets []float64) *ServerMetrics {
	labels := []string{"grpc_type", "grpc_service", "grpc_method"}
	m := &ServerMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_started_total",
			Help: "Total number of RPCs started on the server.",
		}, labels),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total",
			Help: "Total number of RPCs completed on the server, regardless of success or failure.",
		}, append(labels[:3:3], "grpc_code")),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_received_total",
			Help: "Total number of RPC stream messages received on the server.",
		}, labels),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_sent_total",
			Help: "Total number of gRPC stream messages sent by the server.",
		}, labels),
		handling: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grpc_server_handling_seconds",
			Help:    "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
			Buckets: buckets,
		}, labels),
	}
	return m
}

// Describe implements prometheus.Collector.
func (m *ServerMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.started.Describe(ch)
	m.handled.Describe(ch)
	m.received.Describe(ch)
	m.sent.Describe(ch)
	m.handling.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *ServerMetrics) Collect(ch chan<- prometheus.Metric) {
	m.started.Collect(ch)
	m.handled.Collect(ch)
	m.received.Collect(ch)
	m.sent.Collect(ch)
	m.handling.Collect(ch)
}

// ServiceInfoProvider is what InitializeMetrics needs of a server:
// *grpc.Server is one.
type ServiceInfoProvider interface {
	GetServiceInfo() map[string]grpc.ServiceInfo
}

// InitializeMetrics resolves the series of every method registered on
// server, exported from then on at zero (every code of
// grpc_server_handled_total included), so that dashboards and alerts see
// them before the first call.
func (m *ServerMetrics) InitializeMetrics(server ServiceInfoProvider) {
	for service, info := range server.GetServiceInfo() {
		for _, method := range info.Methods {
			typ := typeUnary
			switch {
			case method.IsClientStream && method.IsServerStream:
				typ = typeBidiStream
			case method.IsClientStream:
				typ = typeClientStream
			case method.IsServerStream:
				typ = typeServerStream
			}
			m.series(rpcmethod.Join(service, method.Name), typ)
		}
	}
}

// series returns the series of fullMethod, resolving them the first time.
func (m *ServerMetrics) series(fullMethod, typ string) *methodSeries {
	if s, ok := m.methods.Load(fullMethod); ok {
		return s
	}
	return m.methods.LoadOrMake(fullMethod, func() *methodSeries {
		service, method := rpcmethod.Split(fullMethod)
		s := &methodSeries{
			typ: typ, service: service, method: method,
			started:  m.started.WithLabelValues(typ, service, method),
			received: m.received.WithLabelValues(typ, service, method),
			sent:     m.sent.WithLabelValues(typ, service, method),
			handling: m.handling.WithLabelValues(typ, service, method),
		}
		for c := range s.handled {
			s.handled[c] = m.handled.WithLabelValues(typ, service, method, codes.Code(c).String())
		}
		return s
	})
}

// done counts a finished RPC: its code, from err as grpc-go itself
// derives it (context errors included), and its duration.
func (m *ServerMetrics) done(s *methodSeries, err error, start time.Time) {
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	if c := st.Code(); c < numCodes {
		s.handled[c].Inc()
	} else {
		m.handled.WithLabelValues(s.typ, s.service, s.method, c.String()).Inc()
	}
	s.handling.Observe(time.Since(start).Seconds())
}

// UnaryServerInterceptor counts unary RPCs: started, the request received,
// the response sent (when the handler succeeds), handled by code, and the
// handling time.
func (m *ServerMetrics) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		s := m.series(info.FullMethod, typeUnary)
		s.started.Inc()
		s.received.Inc()
		resp, err := handler(ctx, req)
		if err == nil {
			s.sent.Inc()
		}
		m.done(s, err, start)
		return resp, err
	}
}

// StreamServerInterceptor counts streaming RPCs like UnaryServerInterceptor,
// and every message received and sent successfully.
func (m *ServerMetrics) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		typ := typeBidiStream
		switch {
		case info.IsClientStream && !info.IsServerStream:
			typ = typeClientStream
		case !info.IsClientStream && info.IsServerStream:
			typ = typeServerStream
		}
		s := m.series(info.FullMethod, typ)
		s.started.Inc()
		err := handler(srv, &countingStream{ServerStream: ss, s: s})
		m.done(s, err, start)
		return err
	}
}

// countingStream counts the messages of one stream.
type countingStream struct {
	grpc.ServerStream
	s *methodSeries
}

func (c *countingStream) SendMsg(msg any) error {
	err := c.ServerStream.SendMsg(msg)
	if err == nil {
		c.s.sent.Inc()
	}
	return err
}

func (c *countingStream) RecvMsg(msg any) error {
	err := c.ServerStream.RecvMsg(msg)
	if err == nil {
		c.s.received.Inc()
	}
	return err
}
