package web

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// workers runs calls on goroutines kept from one call to the next, as
// grpc-go's stream workers (grpc.NumStreamWorkers) run the gRPC port's.
//
// net/http starts a goroutine for every request, with a small stack; a call
// through connect-go, the interceptors and the access log needs several
// times that, so every call grew its stack by copying it, a large share of
// the HTTP port's CPU (docs/performance.md, "HTTP port"). A kept goroutine keeps the stack it grew. The request's
// goroutine waits while a worker serves it, so net/http's rules for the
// ResponseWriter (one goroutine at a time, none after the handler returns)
// hold.
//
// Workers start as calls need them, up to max, so an idle server holds
// none; a call finding every worker busy runs on its own goroutine.
type workers struct {
	max     int64
	started atomic.Int64
	jobs    chan *job     // unbuffered: a send succeeds only to an idle worker
	quit    chan struct{} // closed by stop: idle workers end
	stopped sync.Once
}

// workerReset is how many calls a worker serves before handing its place to
// a new goroutine, so that a stack grown once by an unusually deep call is
// given back: grpc-go's serverWorkerResetThreshold.
const workerReset = 1 << 16

// job is one call handed to a worker.
type job struct {
	handler http.Handler
	w       http.ResponseWriter
	r       *http.Request
	done    chan any // the call's panic, or nil once served; buffered
}

var jobPool = sync.Pool{New: func() any { return &job{done: make(chan any, 1)} }}

func newWorkers(max int) *workers {
	return &workers{max: int64(max), jobs: make(chan *job), quit: make(chan struct{})}
}

// stop ends the idle workers, and each busy one once its call is served.
func (p *workers) stop() { p.stopped.Do(func() { close(p.quit) }) }

// serve serves w and r with h on a worker, and returns once it is served.
// A panic of h is raised again here, on the request's goroutine, where
// net/http recovers it (http.ErrAbortHandler as it is).
func (p *workers) serve(h http.Handler, w http.ResponseWriter, r *http.Request) {
	if p.max == 0 {
		h.ServeHTTP(w, r)
		return
	}
	growStack()
	j := jobPool.Get().(*job)
	j.handler, j.w, j.r = h, w, r
	select {
	case p.jobs <- j:
	default:
		if p.started.Add(1) > p.max {
			p.started.Add(-1)
			j.handler, j.w, j.r = nil, nil, nil
			jobPool.Put(j)
			h.ServeHTTP(w, r)
			return
		}
		go p.work(j)
	}
	v := <-j.done
	jobPool.Put(j)
	if v != nil {
		panic(v)
	}
}

// work serves j, then every job it is handed, until its reset or stop;
// a call finding no idle worker then starts a new one.
func (p *workers) work(j *job) {
	defer p.started.Add(-1)
	for range workerReset {
		j.done <- run(j)
		select {
		case j = <-p.jobs:
		case <-p.quit:
			return
		}
	}
	j.done <- run(j)
}

// run serves j, and returns its panic, if any: a worker outlives its calls.
func run(j *job) (panicked any) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				v = fmt.Errorf("%v\n\nthe worker's stack:\n%s", v, debug.Stack())
			}
			panicked = v
		}
	}()
	h, w, r := j.handler, j.w, j.r
	j.handler, j.w, j.r = nil, nil, nil
	h.ServeHTTP(w, r)
	return nil
}

// growStack grows the calling goroutine's stack by at least 8 KiB, in one
// copy made while the stack is shallow.
//
// The request's goroutine, which a worker spares the call's depth, still
// runs net/http's own work once the call is served (the response's
// headers: a map iteration and HPACK encoding), which overflows a new
// goroutine's stack; it grew there, copying a deeper stack (the profiles
// before and after: docs/performance.md). CockroachDB's growstack package does the same for its hot goroutines.
//
//go:noinline
func growStack() {
	var frame [8 << 10]byte
	touch(frame[:])
}

// touch keeps growStack's frame from being optimised away.
//
//go:noinline
func touch(b []byte) { b[len(b)-1] = 1 }
