// Package verbose reports, for -v, what happened on the wire: the method
// called, the response headers and trailers, the final status and how long
// the call took.
package verbose

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Trace reports the trace a command's calls belong to, once per command,
// as "* trace-id: <32 hex digits>": the id to look the calls up by in a
// tracing backend, or to find the server's access log lines with.
func Trace(w io.Writer, traceID string) {
	fmt.Fprintf(w, "* trace-id: %s\n", traceID)
}

// Logger writes the report to one writer. Its interceptors may run on
// several goroutines; writes are serialised.
type Logger struct {
	mu sync.Mutex
	w  io.Writer
}

// New returns a Logger writing to w, usually standard error so that the
// report never mixes with the output a script parses.
func New(w io.Writer) *Logger {
	return &Logger{w: w}
}

// DialOptions returns the interceptors that report every call.
func (l *Logger) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(l.unary),
		grpc.WithChainStreamInterceptor(l.stream),
	}
}

func (l *Logger) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	var header, trailer metadata.MD
	start := time.Now()
	l.printf("> %s\n", method)
	l.printMD(ctx)
	err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Header(&header), grpc.Trailer(&trailer))...)
	l.printMetadata("header", header)
	l.printMetadata("trailer", trailer)
	l.printf("< %s in %s\n", status.Code(err), time.Since(start).Round(time.Microsecond))
	return err
}

func (l *Logger) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	start := time.Now()
	l.printf("> %s\n", method)
	l.printMD(ctx)
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		l.printf("< %s in %s\n", status.Code(err), time.Since(start).Round(time.Microsecond))
		return nil, err
	}
	return &loggedStream{ClientStream: s, l: l, start: start, single: !desc.ServerStreams}, nil
}

func (l *Logger) printMD(ctx context.Context) {
	md, _ := metadata.FromOutgoingContext(ctx)
	for _, line := range lines(md) {
		l.printf("> %s\n", line)
	}
}

func (l *Logger) printMetadata(kind string, md metadata.MD) {
	for _, line := range lines(md) {
		l.printf("< %s %s\n", kind, line)
	}
}

func (l *Logger) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}

func lines(md metadata.MD) []string {
	var out []string
	for k, vs := range md {
		for _, v := range vs {
			out = append(out, k+": "+v)
		}
	}
	sort.Strings(out)
	return out
}

// loggedStream reports the headers with the first message and the
// trailers, status and duration when the stream ends.
type loggedStream struct {
	grpc.ClientStream
	l            *Logger
	start        time.Time
	single       bool // The server answers once: the first message ends the call.
	headerOnce   sync.Once
	finishedOnce sync.Once
	received     int
}

func (s *loggedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	s.headerOnce.Do(func() {
		if h, herr := s.ClientStream.Header(); herr == nil {
			s.l.printMetadata("header", h)
		}
	})
	if err == nil {
		s.received++
		if !s.single {
			return nil
		}
	}
	s.finishedOnce.Do(func() {
		s.l.printMetadata("trailer", s.ClientStream.Trailer())
		code := status.Code(err)
		if err == io.EOF {
			code = status.Code(nil)
		}
		s.l.printf("< %s after %d messages in %s\n", code, s.received, time.Since(s.start).Round(time.Microsecond))
	})
	return err
}
