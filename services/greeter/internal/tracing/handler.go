package tracing

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	messageconv "go.opentelemetry.io/otel/semconv/v1.39.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/acme/greeter/services/greeter/internal/rpcmethod"
)

// The attributes of a rejected request's span: the field path and the rule
// id (the BadRequest reason) of each violation, in the same order. Values
// are never recorded: a name that breaks the rules is still a name.
const (
	RejectedFieldsKey = attribute.Key("greeter.validation.fields")
	RejectedRulesKey  = attribute.Key("greeter.validation.rules")
)

// MessageEvent is the name of the span event WithMessageEvents adds per
// message, with the rpc.message.* attributes.
const MessageEvent = "rpc.message"

// HandlerOption configures ServerHandler.
type HandlerOption func(*handlerOptions)

type handlerOptions struct {
	messageEvents       bool
	healthAndReflection bool
}

// WithMessageEvents adds a span event per message sent and received
// (rpc.message.type, rpc.message.id and the sizes), which shows the timing
// of a stream's messages at the cost of an event each: a stream of 10,000
// greetings is a span of 10,000 events. The default is off: a span per
// call with its outcome only.
func WithMessageEvents(on bool) HandlerOption {
	return func(o *handlerOptions) { o.messageEvents = on }
}

// WithHealthAndReflection traces grpc.health.v1 and server reflection
// calls too. The default is off: probes every few seconds would be most of
// the spans and none of the interest.
func WithHealthAndReflection(on bool) HandlerOption {
	return func(o *handlerOptions) { o.healthAndReflection = on }
}

// ServerHandler returns the stats handler that gives every RPC of a
// server one span, child of the trace context the client sent: otelgrpc's,
// which names it after the method and sets the RPC semantic conventions'
// attributes (rpc.system.name, rpc.method, rpc.response.status_code,
// server.address, ...) and the span status (Error for server faults only).
// To that it adds, for a call rejected with a google.rpc.BadRequest (what
// validation answers), the rejected field paths and rules
// (RejectedFieldsKey, RejectedRulesKey), and message events when asked.
//
// On a nil Provider it returns nil: no handler to install.
func (p *Provider) ServerHandler(opts ...HandlerOption) stats.Handler {
	if p == nil {
		return nil
	}
	var o handlerOptions
	for _, opt := range opts {
		opt(&o)
	}
	otelOpts := []otelgrpc.Option{
		otelgrpc.WithTracerProvider(p.tp),
		otelgrpc.WithPropagators(p.propagator),
		// The greeter's RPC metrics are Prometheus (package metrics);
		// otelgrpc's would be recorded for no reader.
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
	}
	if !o.healthAndReflection {
		otelOpts = append(otelOpts, otelgrpc.WithFilter(filters.None(
			func(info *stats.RPCTagInfo) bool { return rpcmethod.IsHealth(info.FullMethodName) },
			filters.ServicePrefix("grpc.reflection."),
		)))
	}
	return &serverHandler{Handler: otelgrpc.NewServerHandler(otelOpts...), messageEvents: o.messageEvents}
}

// serverHandler is otelgrpc's server handler plus the rejected fields and
// the message events.
//
// otelgrpc v0.72.0 no longer records message events (its
// WithMessageEvents is accepted and ignored: the semantic conventions
// deprecated rpc.message events), so they are recorded here, in the shape
// semconv v1.39.0 defined.
type serverHandler struct {
	stats.Handler
	messageEvents bool
}

// messageIDs numbers one call's messages, per direction, from 1. Sends and
// receives of a bidirectional stream run on different goroutines.
type messageIDs struct{ sent, received atomic.Int64 }

type messageIDsKey struct{}

func (h *serverHandler) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	ctx = h.Handler.TagRPC(ctx, info)
	if h.messageEvents && trace.SpanFromContext(ctx).IsRecording() {
		ctx = context.WithValue(ctx, messageIDsKey{}, &messageIDs{})
	}
	return ctx
}

func (h *serverHandler) HandleRPC(ctx context.Context, rs stats.RPCStats) {
	switch rs := rs.(type) {
	case *stats.InPayload:
		if ids, ok := ctx.Value(messageIDsKey{}).(*messageIDs); ok {
			addMessageEvent(ctx, messageconv.RPCMessageTypeReceived, ids.received.Add(1), rs.Length, rs.CompressedLength, rs.RecvTime)
		}
	case *stats.OutPayload:
		if ids, ok := ctx.Value(messageIDsKey{}).(*messageIDs); ok {
			addMessageEvent(ctx, messageconv.RPCMessageTypeSent, ids.sent.Add(1), rs.Length, rs.CompressedLength, rs.SentTime)
		}
	case *stats.End:
		// Before otelgrpc's End, which ends the span.
		recordRejection(trace.SpanFromContext(ctx), rs.Error)
	}
	h.Handler.HandleRPC(ctx, rs)
}

func addMessageEvent(ctx context.Context, typ attribute.KeyValue, id int64, size, compressed int, at time.Time) {
	trace.SpanFromContext(ctx).AddEvent(MessageEvent, trace.WithTimestamp(at), trace.WithAttributes(
		typ,
		messageconv.RPCMessageID(int(id)),
		messageconv.RPCMessageUncompressedSize(size),
		messageconv.RPCMessageCompressedSize(compressed),
	))
}

// recordRejection adds the field paths and rules of err's BadRequest
// violations to span. It reads the status the client receives, so it
// covers every rejection — protovalidate rules and requests that did not
// decode (package validate) — without validation knowing about tracing.
func recordRejection(span trace.Span, err error) {
	if err == nil || !span.IsRecording() {
		return
	}
	st, ok := status.FromError(err)
	if !ok {
		return
	}
	var fields, rules []string
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		for _, v := range br.GetFieldViolations() {
			fields = append(fields, v.GetField())
			rules = append(rules, v.GetReason())
		}
	}
	if len(fields) > 0 {
		span.SetAttributes(RejectedFieldsKey.StringSlice(fields), RejectedRulesKey.StringSlice(rules))
	}
}
