package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"
)

// timedBody ends the reading of a request body that has not arrived whole
// within timeout, with an error that says so. One timer per call, rather
// than a read deadline set and cleared: on HTTP/2 each of those is a
// message to the connection's goroutine.
//
// A client stream's body is read for as long as the stream lasts: its
// timedBody ends the read once the call's context is done instead, when
// the admission reaps the call (no first message within the first-message
// timeout, which shortens as memory fills; shed) or Shutdown cuts it off.
// connect-go's read of the body does not look at the context, so without
// this a client that never sends a message would hold the call, and its
// connection, for good.
type timedBody struct {
	io.ReadCloser
	w       http.ResponseWriter // its controller sets the read deadline that ends the read
	timeout time.Duration
	setting string // the timeout's name, for the answer
	timer   *time.Timer
	ctx     context.Context // a client stream's: its end ends the read
	stopCtx func() bool     // context.AfterFunc's stop
	mu      sync.Mutex
	state   bodyState
}

type bodyState int

const (
	bodyReading bodyState = iota
	bodyDone              // read whole, or the call is over
	bodyExpired
)

func newTimedBody(body io.ReadCloser, w http.ResponseWriter, timeout time.Duration, setting string) *timedBody {
	b := &timedBody{ReadCloser: body, w: w, timeout: timeout, setting: setting}
	b.timer = time.AfterFunc(timeout, b.expire)
	return b
}

func newStreamBody(ctx context.Context, body io.ReadCloser, w http.ResponseWriter) *timedBody {
	b := &timedBody{ReadCloser: body, w: w, ctx: ctx}
	b.stopCtx = context.AfterFunc(ctx, b.expire)
	return b
}

// expire ends the read in progress: a read deadline in the past resets the
// HTTP/2 stream, or ends the HTTP/1.1 connection, which net/http then
// closes (its body was not read).
func (b *timedBody) expire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != bodyReading {
		return
	}
	b.state = bodyExpired
	_ = http.NewResponseController(b.w).SetReadDeadline(time.Now().Add(-time.Second))
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == nil {
		return n, nil
	}
	b.mu.Lock()
	state := b.state
	if state == bodyReading && errors.Is(err, io.EOF) {
		b.state = bodyDone
	}
	b.mu.Unlock()
	switch {
	case state == bodyExpired && b.ctx != nil:
		return n, connect.NewError(connect.CodeCanceled, fmt.Errorf("the call ended while its request was read: %w", context.Cause(b.ctx)))
	case state == bodyExpired:
		return n, connect.NewError(connect.CodeDeadlineExceeded, fmt.Errorf(
			"the request did not arrive whole within %v of the call's start, the server's first-message timeout%s", b.timeout, hint(b.setting)))
	}
	if errors.Is(err, io.EOF) {
		b.stopWatch()
	}
	return n, err
}

// stopWatch stops whatever would end the read.
func (b *timedBody) stopWatch() {
	if b.timer != nil {
		b.timer.Stop()
	}
	if b.stopCtx != nil {
		b.stopCtx()
	}
}

// stop ends the timer once the call is over: the ResponseController is not
// to be used after its handler returns.
func (b *timedBody) stop() {
	b.mu.Lock()
	if b.state == bodyReading {
		b.state = bodyDone
	}
	b.mu.Unlock()
	b.stopWatch()
}

// stallWriter gives every write of a response that may reach the
// connection at least nine tenths of timeout to complete.
//
// Setting a write deadline is, on HTTP/2, a message to the connection's
// goroutine: so it is set only for a write that may block — a Flush, or one
// past what net/http buffers — and renewed only once the write watch,
// which looks every tenth of the timeout, has looked again (its tick; a
// server stream flushes every message, and a clock read for each showed).
// A small unary response stays in net/http's buffer until the handler
// returns, and costs no deadline.
type stallWriter struct {
	http.ResponseWriter
	rc       *http.ResponseController // made by the first write that needs it
	timeout  time.Duration
	watch    *writeWatch
	h2       bool  // the request is HTTP/2's: the deadline is its stream's
	buffered int   // bytes written since the last flush
	armed    bool  // a deadline is set
	armedAt  int64 // the watch's tick when it was
}

// handlerBuffer is what net/http buffers of a handler's response before
// writing to the connection, at least: 2 KiB on HTTP/1.1 (before chunking),
// 4 KiB on HTTP/2.
const handlerBuffer = 2 << 10

func (w *stallWriter) arm() {
	tick := w.watch.tick.Load()
	if w.armed && tick == w.armedAt {
		return
	}
	w.armed, w.armedAt = true, tick
	_ = w.controller().SetWriteDeadline(time.Now().Add(w.timeout))
}

func (w *stallWriter) Write(p []byte) (int, error) {
	w.buffered += len(p)
	if w.buffered > handlerBuffer {
		w.arm()
	}
	return w.ResponseWriter.Write(p)
}

func (w *stallWriter) Flush() {
	w.arm()
	w.buffered = 0
	_ = w.controller().Flush()
}

// end clears the deadline, if one was set, on HTTP/1.1: there it is the
// connection's, and would end the next request. An HTTP/2 stream's ends
// with the stream, and clearing it would cost another message to the
// connection's goroutine on every call that flushed (gRPC and gRPC-Web
// flush each response).
func (w *stallWriter) end() {
	if w.armed && !w.h2 {
		_ = w.controller().SetWriteDeadline(time.Time{})
	}
}

func (w *stallWriter) controller() *http.ResponseController {
	if w.rc == nil {
		w.rc = http.NewResponseController(w.ResponseWriter)
	}
	return w.rc
}

func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusRecorder notes the HTTP status of a response.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

func (r *statusRecorder) Flush() {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush() // as net/http's writers are: a controller would cost an allocation per message of a stream
		return
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}
