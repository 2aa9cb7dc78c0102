package tracing

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestErrorReporter checks that each kind of error is logged once and
// counted after, and that the kinds are bounded.
func TestErrorReporter(t *testing.T) {
	var buf bytes.Buffer
	r := newErrorReporter(slog.New(slog.NewTextHandler(&buf, nil)))
	unavailable := func(detail string) error {
		return fmt.Errorf("traces export: %w", status.Error(codes.Unavailable, "connection error: "+detail))
	}
	for range 5 {
		r.Handle(unavailable("connection refused"))
	}
	r.Handle(unavailable("i/o timeout")) // the same kind: the collector is unreachable
	r.Handle(errors.New(`failed to send to http://c:4318/v1/traces: 503 Service Unavailable`))
	r.Handle(nil)
	logged := strings.Count(buf.String(), "tracing error;")
	if logged != 2 {
		t.Errorf("logged %d errors, want 2 (one per kind):\n%s", logged, buf.String())
	}
	if !strings.Contains(buf.String(), `kind="gRPC Unavailable"`) || !strings.Contains(buf.String(), "connection refused") {
		t.Errorf("first line does not name the kind and the error:\n%s", buf.String())
	}

	buf.Reset()
	r.summarize()
	if got := strings.TrimSpace(buf.String()); strings.Count(got, "\n") != 0 || !strings.Contains(got, `kind="gRPC Unavailable" count=6`) {
		t.Errorf("summary %q, want one line counting the 6 Unavailable errors", got)
	}

	buf.Reset()
	for i := range 2 * maxErrorKinds {
		r.Handle(fmt.Errorf("error number %d", i))
	}
	if n := len(r.counts); n != maxErrorKinds+1 {
		t.Errorf("%d kinds kept, want at most %d and %q", n, maxErrorKinds, otherKind)
	}
	if logged := strings.Count(buf.String(), "tracing error;"); logged != maxErrorKinds-2+1 {
		t.Errorf("logged %d lines for %d distinct errors, want %d", logged, 2*maxErrorKinds, maxErrorKinds-2+1)
	}
}
