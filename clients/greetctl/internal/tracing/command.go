package tracing

import (
	"fmt"
	"strings"

	otelcodes "go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/acme/greeter/clients/greetctl/internal/exitcode"
	"github.com/acme/greeter/clients/greetctl/internal/flagname"
)

// Parent is the caller's span a command continues: given by traceparent
// (--traceparent) or by md's traceparent header, with its tracestate (-H);
// an invalid span context if neither. Both at once, a header given twice
// or a malformed traceparent is a usage error naming the flag.
func Parent(traceparent string, md metadata.MD) (trace.SpanContext, error) {
	fromHeader := md.Get(TraceparentHeader)
	state := strings.Join(md.Get(TracestateHeader), ",")
	switch {
	case traceparent != "" && len(fromHeader) > 0:
		return trace.SpanContext{}, exitcode.Usagef("%s and %s %s: give the caller's trace context once", flagname.Traceparent,
			flagname.HeaderShort, TraceparentHeader)
	case len(fromHeader) > 1:
		return trace.SpanContext{}, exitcode.Usagef("%s: %s given %d times: a call continues one trace", flagname.HeaderShort,
			TraceparentHeader, len(fromHeader))
	case traceparent != "":
		sc, err := ParseParent(traceparent, state)
		if err != nil {
			return sc, exitcode.Usagef("%s: %w", flagname.Traceparent, err)
		}
		return sc, nil
	case len(fromHeader) == 1:
		sc, err := ParseParent(fromHeader[0], state)
		if err != nil {
			return sc, exitcode.Usagef("%s %s: %w", flagname.HeaderShort, TraceparentHeader, err)
		}
		return sc, nil
	}
	return trace.SpanContext{}, nil
}

// Outgoing sets the trace context headers of md, a call's metadata from
// -H, for the call: traced, t's client spans send the trace context (the
// one of -H and --traceparent included: it is the command's parent), so
// md's own are removed; off, traceparent (--traceparent), if given, is
// sent as is, for the server to continue the caller's trace itself.
func (t *Tracing) Outgoing(md metadata.MD, traceparent string) {
	if t != nil {
		md.Delete(TraceparentHeader)
		md.Delete(TracestateHeader)
	} else if traceparent != "" {
		md.Set(TraceparentHeader, strings.TrimSpace(traceparent))
	}
}

// End records a command's outcome on its span and ends it: a failure sets
// the span's status (the gRPC code, else the exit status) and
// process.exit.code.
func End(span trace.Span, err error) {
	if err != nil {
		code := exitcode.FromError(err)
		description := fmt.Sprintf("exit status %d", code)
		if st, ok := status.FromError(err); ok {
			description = st.Code().String()
		}
		span.SetAttributes(semconv.ProcessExitCode(code))
		span.SetStatus(otelcodes.Error, description)
	}
	span.End()
}
