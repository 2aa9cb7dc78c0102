package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
)

// deadlineBody clears the read deadline once the body has been read
// whole.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	// Only once read whole: after a timeout the deadline must stay, or
	// closing the body would wait for the rest of it.
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// stallWriter gives every write of a response timeout to complete.
type stallWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (w *stallWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.ResponseWriter.Write(p)
}

func (w *stallWriter) Flush() {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	_ = w.rc.Flush()
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
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// statusGuard runs a call on the gRPC server, cut off when Shutdown's
// context ends, and gives every call the gRPC server ends without a status
// one: grpc-go's ServeHTTP drops the status of a call whose request context
// ends, which vanguard would report as INTERNAL "missing trailer". The cut
// reaches the gRPC server's handler only, not vanguard, which then ends the
// stream with the status given here.
type statusGuard struct {
	g      http.Handler
	cutoff context.Context
}

func (sg statusGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(sg.cutoff, cancel)
	defer stop()
	hw := &headerWatch{ResponseWriter: w}
	sg.g.ServeHTTP(hw, r.WithContext(ctx))
	h := w.Header()
	code, msg := codes.Canceled, "the call was cancelled"
	cut := sg.cutoff.Err() != nil
	if cut {
		code, msg = codes.Unavailable, "the server is shutting down and cut the call off at the end of its drain: retry"
	}
	for _, prefix := range []string{"", http.TrailerPrefix} {
		switch h.Get(prefix + "Grpc-Status") {
		case "":
			continue
		case strconv.Itoa(int(codes.Canceled)):
			// The handler saw the cut as its context cancelled.
			if cut {
				h.Set(prefix+"Grpc-Status", strconv.Itoa(int(code)))
				h.Set(prefix+"Grpc-Message", msg)
			}
		}
		return
	}
	if !hw.wroteHeader {
		// Trailers-only, as grpc-go sends an error before any message.
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", strconv.Itoa(int(code)))
		h.Set("Grpc-Message", msg)
		w.WriteHeader(http.StatusOK)
		return
	}
	h.Set(http.TrailerPrefix+"Grpc-Status", strconv.Itoa(int(code)))
	h.Set(http.TrailerPrefix+"Grpc-Message", msg)
}

// headerWatch notes whether the response's headers went out. grpc-go
// needs it to be an http.Flusher.
type headerWatch struct {
	http.ResponseWriter
	wroteHeader bool
}

func (w *headerWatch) WriteHeader(code int) {
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *headerWatch) Write(p []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(p)
}

func (w *headerWatch) Flush() {
	w.wroteHeader = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *headerWatch) Unwrap() http.ResponseWriter { return w.ResponseWriter }
