// Package otlpsink runs a real OTLP receiver on loopback — the
// OpenTelemetry Collector's own otlpreceiver, OTLP/gRPC and OTLP/HTTP —
// feeding an in-memory sink, for the tests and benchmarks that check what
// the greeter and greetctl export. What arrives here went through the
// same receiver, decoding and validation a collector in production
// applies; there is no hand-written OTLP service in this repository.
package otlpsink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// Receiver is a running OTLP receiver.
type Receiver struct {
	// GRPCAddr and HTTPAddr are the loopback addresses of OTLP/gRPC and
	// OTLP/HTTP, host:port.
	GRPCAddr, HTTPAddr string

	rcv   receiver.Traces
	sink  *consumertest.TracesSink // nil with CountOnly
	count atomic.Int64
}

// Option configures Start.
type Option func(*settings)

type settings struct{ countOnly bool }

// CountOnly keeps no span, only their number: for load, where keeping
// millions of spans would measure the sink's memory.
func CountOnly() Option { return func(s *settings) { s.countOnly = true } }

// Start starts a receiver on two free loopback ports.
func Start(ctx context.Context, opts ...Option) (*Receiver, error) {
	var s settings
	for _, o := range opts {
		o(&s)
	}
	// A free port can be taken by someone else before the receiver binds
	// it; try again with others.
	var errs []error
	for range 3 {
		r, err := start(ctx, s)
		if err == nil {
			return r, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func start(ctx context.Context, s settings) (*Receiver, error) {
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	r := &Receiver{GRPCAddr: grpcAddr, HTTPAddr: httpAddr}
	next, err := consumer.NewTraces(func(ctx context.Context, td ptrace.Traces) error {
		r.count.Add(int64(td.SpanCount()))
		if r.sink != nil {
			return r.sink.ConsumeTraces(ctx, td)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !s.countOnly {
		r.sink = new(consumertest.TracesSink)
	}
	factory := otlpreceiver.NewFactory()
	cfg := factory.CreateDefaultConfig().(*otlpreceiver.Config)
	cfg.Protocols.GRPC.GetOrInsertDefault().NetAddr.Endpoint = grpcAddr
	cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = httpAddr
	r.rcv, err = factory.CreateTraces(ctx, receivertest.NewNopSettings(factory.Type()), cfg, next)
	if err != nil {
		return nil, err
	}
	if err := r.rcv.Start(ctx, componenttest.NewNopHost()); err != nil {
		_ = r.rcv.Shutdown(ctx)
		return nil, fmt.Errorf("start OTLP receiver on %s and %s: %w", grpcAddr, httpAddr, err)
	}
	return r, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// GRPCEndpoint is OTEL_EXPORTER_OTLP_ENDPOINT for OTLP/gRPC
// (OTEL_EXPORTER_OTLP_PROTOCOL=grpc).
func (r *Receiver) GRPCEndpoint() string { return "http://" + r.GRPCAddr }

// HTTPEndpoint is OTEL_EXPORTER_OTLP_ENDPOINT for OTLP/HTTP
// (OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, the default).
func (r *Receiver) HTTPEndpoint() string { return "http://" + r.HTTPAddr }

// Shutdown stops the receiver; exports to it fail from then on.
func (r *Receiver) Shutdown(ctx context.Context) error { return r.rcv.Shutdown(ctx) }

// SpanCount is how many spans have arrived.
func (r *Receiver) SpanCount() int64 { return r.count.Load() }

// Span is one span received, flattened for assertions.
type Span struct {
	// Resource holds the resource attributes (service.name, ...).
	Resource map[string]any
	Name     string
	// Kind is Server, Client, Internal, ...
	Kind string
	// TraceID, SpanID and ParentSpanID are lower-case hex; ParentSpanID
	// is "" for a root span.
	TraceID, SpanID, ParentSpanID string
	// StatusCode is Unset, Ok or Error.
	StatusCode, StatusMessage string
	Attributes                map[string]any
	Events                    []Event
}

// Service is the span's service.name.
func (s Span) Service() string {
	name, _ := s.Resource["service.name"].(string)
	return name
}

// Event is a span event.
type Event struct {
	Name       string
	Attributes map[string]any
}

// Spans returns every span received so far, in the order they arrived;
// nil with CountOnly.
func (r *Receiver) Spans() []Span {
	if r.sink == nil {
		return nil
	}
	var out []Span
	for _, td := range r.sink.AllTraces() {
		for i := range td.ResourceSpans().Len() {
			rs := td.ResourceSpans().At(i)
			res := rs.Resource().Attributes().AsRaw()
			for j := range rs.ScopeSpans().Len() {
				spans := rs.ScopeSpans().At(j).Spans()
				for k := range spans.Len() {
					out = append(out, flatten(res, spans.At(k)))
				}
			}
		}
	}
	return out
}

func flatten(res map[string]any, s ptrace.Span) Span {
	out := Span{
		Resource:      res,
		Name:          s.Name(),
		Kind:          s.Kind().String(),
		TraceID:       s.TraceID().String(),
		SpanID:        s.SpanID().String(),
		StatusCode:    s.Status().Code().String(),
		StatusMessage: s.Status().Message(),
		Attributes:    s.Attributes().AsRaw(),
	}
	if !s.ParentSpanID().IsEmpty() {
		out.ParentSpanID = s.ParentSpanID().String()
	}
	for i := range s.Events().Len() {
		e := s.Events().At(i)
		out.Events = append(out.Events, Event{Name: e.Name(), Attributes: e.Attributes().AsRaw()})
	}
	return out
}

// Wait waits until done reports true of the spans received, polling every
// 10ms, at most timeout; it returns the spans it last saw, and an error if
// done never did.
func (r *Receiver) Wait(ctx context.Context, timeout time.Duration, done func([]Span) bool) ([]Span, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		spans := r.Spans()
		if done(spans) {
			return spans, nil
		}
		select {
		case <-ctx.Done():
			return spans, fmt.Errorf("spans received within %s: %d, not what was waited for", timeout, len(spans))
		case <-tick.C:
		}
	}
}
