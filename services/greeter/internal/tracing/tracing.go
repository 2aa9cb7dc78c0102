// Package tracing owns the greeter's OpenTelemetry tracing: the tracer
// provider built from the standard OTEL_* environment variables, the gRPC
// stats handler that gives every RPC a server span, and the exporter's
// lifecycle (bounded batching, errors reported once, the flush on drain).
//
// Tracing is off unless the environment configures a trace exporter (see
// Enabled); then New returns nil, the server installs no stats handler at
// all, and an RPC costs exactly what it costs without this package.
//
// The configuration is OpenTelemetry's own, read by the SDK and contrib
// packages rather than parsed here:
//
//   - the exporter: OTEL_TRACES_EXPORTER (otlp, console, none) and the OTLP
//     exporter's OTEL_EXPORTER_OTLP_* variables (endpoint, protocol,
//     headers, timeout, TLS), through contrib's autoexport;
//   - the resource: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, over the
//     defaults service.name "greeter" and service.version;
//   - sampling: OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, by default
//     parentbased_always_on (a sampled caller is traced, an unsampled one
//     is not);
//   - batching: OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_EXPORT_TIMEOUT,
//     OTEL_BSP_MAX_QUEUE_SIZE (default 2048 spans; past it spans are
//     dropped, never waited for) and OTEL_BSP_MAX_EXPORT_BATCH_SIZE;
//   - propagation: OTEL_PROPAGATORS, by default W3C tracecontext and
//     baggage, through contrib's autoprop.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/contrib/propagators/autoprop"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// The variables that decide whether tracing is on. Everything else about
// the configuration is read by the OpenTelemetry packages themselves.
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
const DefaultServiceName = "greeter"

// Enabled reports whether the environment, read with lookupEnv, configures
// a trace exporter:
//
//   - OTEL_SDK_DISABLED=true turns tracing off, whatever else is set;
//   - OTEL_TRACES_EXPORTER set to "none" turns it off, set to anything else
//     (otlp, console) turns it on;
//   - OTEL_TRACES_EXPORTER unset or empty: on when OTEL_EXPORTER_OTLP_ENDPOINT
//     or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set and not empty (the OTLP
//     exporter then sends there), off otherwise.
//
// The OpenTelemetry SDK itself would export to localhost by default; a
// server that has not been pointed at a collector should not try, nor pay
// for spans nobody receives.
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

// Provider is the process's tracing: a tracer provider exporting in
// batches, the propagator of incoming trace context, and the reporter of
// OpenTelemetry's own errors. A nil *Provider is tracing off; its methods
// are safe to call.
type Provider struct {
	tp         *sdktrace.TracerProvider
	propagator propagation.TextMapPropagator
	errors     *errorReporter
}

// Option configures New.
type Option func(*options)

type options struct {
	lookupEnv      func(string) (string, bool)
	logger         *slog.Logger
	serviceVersion string
	exporter       sdktrace.SpanExporter
}

// WithLogger sets where OpenTelemetry's errors (an unreachable collector,
// a bad setting) and its internal log go. The default, and what nil means,
// is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		o.logger = l
		if l == nil {
			o.logger = slog.Default()
		}
	}
}

// WithServiceVersion sets the service.version resource attribute. The
// default is none; OTEL_RESOURCE_ATTRIBUTES may set or override it.
func WithServiceVersion(v string) Option {
	return func(o *options) { o.serviceVersion = v }
}

// WithLookupEnv sets how Enabled reads the environment, for tests. The
// default, and what nil means, is os.LookupEnv. The OpenTelemetry packages
// always read the process environment.
func WithLookupEnv(lookupEnv func(string) (string, bool)) Option {
	return func(o *options) {
		if lookupEnv != nil {
			o.lookupEnv = lookupEnv
		}
	}
}

// WithSpanExporter turns tracing on with e instead of the exporter the
// environment describes, for tests (an in-memory exporter). The default,
// and what nil means, is the environment's.
func WithSpanExporter(e sdktrace.SpanExporter) Option {
	return func(o *options) { o.exporter = e }
}

// New builds the tracing the environment configures, or returns nil and
// no error when it configures none (see Enabled). An exporter or resource
// setting it cannot honour is an error; settings the SDK reads itself
// (sampler, batch limits, propagators) that are invalid are reported
// through WithLogger's logger, once, and replaced by their defaults, as
// every OpenTelemetry SDK does.
//
// New installs the process-wide OpenTelemetry error handler and logger:
// the SDK reports failed exports only there. Call it once per process.
func New(ctx context.Context, opts ...Option) (*Provider, error) {
	o := options{lookupEnv: os.LookupEnv, logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	exporter := o.exporter
	if exporter == nil && !Enabled(o.lookupEnv) {
		return nil, nil
	}

	// First, so that the errors of everything below are reported through it.
	reporter := newErrorReporter(o.logger)
	otel.SetErrorHandler(reporter)
	otel.SetLogger(logr.FromSlogHandler(o.logger.Handler()))

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
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(defaults...),
		// Last, so that the environment wins over the defaults.
		resource.WithFromEnv(),
	)
	if err != nil {
		_ = exporter.Shutdown(ctx)
		if errors.Is(err, resource.ErrPartialResource) {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
		}
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	return &Provider{
		// WithBatcher reads the OTEL_BSP_* limits; NewTracerProvider reads
		// OTEL_TRACES_SAMPLER(_ARG) and the OTEL_SPAN_* limits.
		tp:         sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res)),
		propagator: autoprop.NewTextMapPropagator(),
		errors:     reporter,
	}, nil
}

// Shutdown exports the spans still buffered, within ctx, and stops the
// exporter; spans that end later are dropped. It then logs how often each
// error it reported once recurred. A nil Provider has nothing to do.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	err := p.tp.Shutdown(ctx)
	p.errors.summarize()
	return err
}
