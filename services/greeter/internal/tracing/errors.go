package tracing

import (
	"log/slog"
	"sort"
	"sync"

	"google.golang.org/grpc/status"
)

// maxErrorKinds bounds the kinds of error an errorReporter tells apart;
// errors of further kinds are counted together as otherKind.
const maxErrorKinds = 32

const otherKind = "other"

// errorReporter is the OpenTelemetry error handler: it logs the first error
// of each kind at warn and only counts the ones that follow, so that an
// unreachable collector, which fails every export (one every
// OTEL_BSP_SCHEDULE_DELAY), is one log line, not a line per batch.
// summarize logs the counts.
type errorReporter struct {
	logger *slog.Logger
	mu     sync.Mutex
	counts map[string]int
}

func newErrorReporter(l *slog.Logger) *errorReporter {
	return &errorReporter{logger: l, counts: map[string]int{}}
}

// Handle implements otel.ErrorHandler.
func (r *errorReporter) Handle(err error) {
	if err == nil {
		return
	}
	kind := errorKind(err)
	r.mu.Lock()
	if _, ok := r.counts[kind]; !ok && len(r.counts) >= maxErrorKinds {
		kind = otherKind
	}
	r.counts[kind]++
	first := r.counts[kind] == 1
	r.mu.Unlock()
	if first {
		r.logger.Warn("tracing error; later errors of this kind are counted, not logged",
			"kind", kind, "error", err)
	}
}

// summarize logs, for each kind of error that recurred, how often it did.
func (r *errorReporter) summarize() {
	r.mu.Lock()
	defer r.mu.Unlock()
	kinds := make([]string, 0, len(r.counts))
	for k, n := range r.counts {
		if n > 1 {
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		r.logger.Warn("tracing error repeated", "kind", k, "count", r.counts[k])
	}
}

// errorKind is what makes two errors the same for errorReporter: the gRPC
// status code of an OTLP/gRPC export failure (the collector is unreachable,
// overloaded, or refuses the data, whatever the message's details), else
// the whole message, which for the other errors (OTLP/HTTP failures, bad
// settings) does not vary from one occurrence to the next.
func errorKind(err error) string {
	if st, ok := status.FromError(err); ok {
		return "gRPC " + st.Code().String()
	}
	return err.Error()
}
