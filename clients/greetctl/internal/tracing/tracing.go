// Package tracing gives each greetctl command an OpenTelemetry span when
// the standard OTEL_* environment configures a trace exporter (the same
// variables, and the same rule, as the greeter server: see Enabled), sends
// the trace context to the server with every call, and reads the W3C
// traceparent a caller hands greetctl to continue its trace.
//
// The configuration is OpenTelemetry's own, read by the SDK and contrib
// packages: OTEL_TRACES_EXPORTER and OTEL_EXPORTER_OTLP_* (contrib's
// autoexport), OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (default
// service.name "greetctl"), OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_* and
// OTEL_PROPAGATORS (contrib's autoprop; default W3C tracecontext and
// baggage).
package tracing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/propagators/autoprop"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// The variables that decide whether tracing is on.
const (
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
	EnvTracesExporter = "OTEL_TRACES_EXPORTER"
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	// EnvProtocol is only named in errors.
	EnvProtocol = "OTEL_EXPORTER_OTLP_PROTOCOL"
)

// DefaultServiceName is service.name unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES say otherwise.
const DefaultServiceName = "greetctl"

// The W3C trace context headers.
const (
	TraceparentHeader = "traceparent"
	TracestateHeader  = "tracestate"
)

// TraceparentFormat says what a traceparent looks like, for help and errors.
const TraceparentFormat = "00-<trace id: 32 hex digits>-<parent span id: 16 hex digits>-<flags: 2 hex digits, 01 sampled>, " +
	"e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// Enabled reports whether the environment, read with lookupEnv, configures
// a trace exporter: not when OTEL_SDK_DISABLED=true; else as
// OTEL_TRACES_EXPORTER says ("none" off, otlp or console on); else when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set
// and not empty.
//
// It is the server's rule (services/greeter/internal/tracing.Enabled),
// written again here: the two modules ship on their own release cycles and
// depend on neither each other nor a shared module, and a test in each
// holds it to the same cases.
func Enabled(lookupEnv func(string) (string, bool)) bool {
	get := func(key string) string {
		v, _ := lookupEnv(key)
		return strings.TrimSpace(v)
	}
	if strings.EqualFold(get(EnvSDKDisabled), "true") {
		return false
	}
	switch exporter := get(EnvTracesExporter); {
	case exporter == "":
		return get(EnvEndpoint) != "" || get(EnvTracesEndpoint) != ""
	case strings.EqualFold(exporter, "none"):
		return false
	default:
		return true
	}
}

// ParseParent reads a W3C traceparent and, if not empty, tracestate, as
// sent by the caller whose trace a command continues. A malformed
// traceparent is an error saying what one looks like; a malformed
// tracestate is dropped, as the W3C specification requires.
func ParseParent(traceparent, tracestate string) (trace.SpanContext, error) {
	carrier := propagation.MapCarrier{TraceparentHeader: strings.TrimSpace(traceparent), TracestateHeader: tracestate}
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), carrier))
	if !sc.IsValid() {
		return trace.SpanContext{}, fmt.Errorf("%q is not a W3C traceparent: want %s", traceparent, TraceparentFormat)
	}
	return sc, nil
}

// Tracing is greetctl's tracing: on, with a tracer provider exporting in
// batches, or off. A nil *Tracing is off; its methods are safe to call.
type Tracing struct {
	tp         *sdktrace.TracerProvider
	propagator propagation.TextMapPropagator
	errors     *errorReporter
}

// Option configures New.
type Option func(*options)

type options struct {
	lookupEnv      func(string) (string, bool)
	warnings       io.Writer
	serviceVersion string
	exporter       sdktrace.SpanExporter
}

// WithLookupEnv sets how Enabled reads the environment. The default, and
// what nil means, is os.LookupEnv; the OpenTelemetry packages always read
// the process environment.
func WithLookupEnv(lookupEnv func(string) (string, bool)) Option {
	return func(o *options) {
		if lookupEnv != nil {
			o.lookupEnv = lookupEnv
		}
	}
}

// WithWarnings sets where errors in exporting spans are reported, once
// per kind. The default, and what nil means, is to discard them.
func WithWarnings(w io.Writer) Option {
	return func(o *options) { o.warnings = w }
}

// WithServiceVersion sets the service.version resource attribute. The
// default is none.
func WithServiceVersion(v string) Option {
	return func(o *options) { o.serviceVersion = v }
}

// WithSpanExporter turns tracing on with e rather than the exporter the
// environment describes, for tests. The default, and what nil means, is
// the environment's.
func WithSpanExporter(e sdktrace.SpanExporter) Option {
	return func(o *options) { o.exporter = e }
}

// New builds the tracing the environment configures, nil when it
// configures none. An exporter or resource setting it cannot honour is an
// error. New installs the process-wide OpenTelemetry error handler.
func New(ctx context.Context, opts ...Option) (*Tracing, error) {
	o := options{lookupEnv: os.LookupEnv}
	for _, opt := range opts {
		opt(&o)
	}
	exporter := o.exporter
	if exporter == nil && !Enabled(o.lookupEnv) {
		return nil, nil
	}
	reporter := &errorReporter{w: o.warnings, seen: map[string]bool{}}
	otel.SetErrorHandler(reporter)
	if exporter == nil {
		var err error
		if exporter, err = autoexport.NewSpanExporter(ctx); err != nil {
			exp, _ := o.lookupEnv(EnvTracesExporter)
			proto, _ := o.lookupEnv(EnvProtocol)
			return nil, fmt.Errorf("trace exporter: %w (%s=%q, %s=%q): %s takes otlp, console or none, %s grpc or http/protobuf",
				err, EnvTracesExporter, exp, EnvProtocol, proto, EnvTracesExporter, EnvProtocol)
		}
	}
	defaults := []attribute.KeyValue{semconv.ServiceName(DefaultServiceName)}
	if o.serviceVersion != "" {
		defaults = append(defaults, semconv.ServiceVersion(o.serviceVersion))
	}
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithAttributes(defaults...), resource.WithFromEnv())
	if err != nil {
		_ = exporter.Shutdown(ctx)
		if errors.Is(err, resource.ErrPartialResource) {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
		}
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	return &Tracing{
		tp:         sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res)),
		propagator: autoprop.NewTextMapPropagator(),
		errors:     reporter,
	}, nil
}

// Start starts the span of a command named name, child of parent when
// parent is valid (a caller's trace to continue). Off, it starts nothing
// and returns ctx carrying parent, so that the trace id is still known.
func (t *Tracing) Start(ctx context.Context, name string, parent trace.SpanContext) (context.Context, trace.Span) {
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	if t == nil {
		return ctx, trace.SpanFromContext(ctx)
	}
	return t.tp.Tracer("github.com/acme/greeter/clients/greetctl").Start(ctx, name, trace.WithSpanKind(trace.SpanKindInternal))
}

// DialOptions are the options that give every call, every attempt of a
// retried one, a client span child of the command's, and send its trace
// context to the server. Off, there are none.
func (t *Tracing) DialOptions() []grpc.DialOption {
	if t == nil {
		return nil
	}
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(t.tp),
		otelgrpc.WithPropagators(t.propagator),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
	))}
}

// Shutdown exports the spans still buffered, within ctx, and stops the
// exporter. An error is reported once (see WithWarnings) unless an export
// error already was.
func (t *Tracing) Shutdown(ctx context.Context) {
	if t == nil {
		return
	}
	if err := t.tp.Shutdown(ctx); err != nil && !t.errors.reported() {
		t.errors.Handle(err)
	}
}

// errorReporter is the OpenTelemetry error handler: it writes the first
// error of each kind, the gRPC status code of a failed OTLP/gRPC export or
// else the message, so that a collector that is down is one warning.
type errorReporter struct {
	w    io.Writer
	mu   sync.Mutex
	seen map[string]bool
}

func (r *errorReporter) Handle(err error) {
	if err == nil || r.w == nil {
		return
	}
	kind := err.Error()
	if st, ok := status.FromError(err); ok {
		kind = st.Code().String()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[kind] {
		return
	}
	r.seen[kind] = true
	fmt.Fprintf(r.w, "greetctl: warning: tracing: %v\n", err)
}

func (r *errorReporter) reported() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen) > 0
}
