// Package logsink buffers log output so that a busy server does not pay a
// write system call per log line.
//
// With an access line per RPC, an unbuffered stderr costs one write(2) per
// RPC, which shows in profiles under load (docs/performance.md, "Figures behind the code").
// A Writer collects lines and writes them at
// most FlushInterval later, or as soon as its buffer fills; a Handler
// flushes at once after records of warning level and above, so problems
// are never held back. What is lost if the process is killed with SIGKILL
// is at most FlushInterval of info and debug lines; the greeter flushes on
// every orderly exit.
package logsink

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// FlushInterval is how long a line may wait in the buffer.
const FlushInterval = 100 * time.Millisecond

// bufferSize bounds the buffer: a full buffer is written at once.
const bufferSize = 64 << 10

// Writer is a buffered, concurrency-safe io.Writer that flushes at most
// FlushInterval after a write.
type Writer struct {
	mu      sync.Mutex
	buf     *bufio.Writer
	pending bool // a flush is scheduled
	closed  bool
}

// New returns a Writer that buffers writes to w.
func New(w io.Writer) *Writer {
	return &Writer{buf: bufio.NewWriterSize(w, bufferSize)}
}

// Write buffers p; a write that fills the buffer is passed through at once.
// After Close, writes go straight through.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if err != nil {
		return n, err
	}
	if w.closed {
		return n, w.buf.Flush()
	}
	if !w.pending && w.buf.Buffered() > 0 {
		w.pending = true
		time.AfterFunc(FlushInterval, func() { _ = w.Flush() })
	}
	return n, nil
}

// Flush writes out everything buffered.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = false
	return w.buf.Flush()
}

// Close flushes and makes later writes unbuffered, so that whatever is
// logged after shutdown still reaches the output at once.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return w.buf.Flush()
}

// Handler wraps h, which writes to w, so that records at or above level
// are flushed as soon as they are handled.
func Handler(h slog.Handler, w *Writer, level slog.Leveler) slog.Handler {
	return &handler{inner: h, w: w, level: level}
}

type handler struct {
	inner slog.Handler
	w     *Writer
	level slog.Leveler
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	err := h.inner.Handle(ctx, r)
	if r.Level >= h.level.Level() {
		if ferr := h.w.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &handler{inner: h.inner.WithAttrs(attrs), w: h.w, level: h.level}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{inner: h.inner.WithGroup(name), w: h.w, level: h.level}
}
