package web

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWorkers(t *testing.T) {
	t.Run("serves on kept goroutines", func(t *testing.T) {
		p := newWorkers(2)
		t.Cleanup(p.stop)
		var mu sync.Mutex
		goroutines := map[uint64]bool{}
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			goroutines[goroutineID()] = true
			mu.Unlock()
			w.WriteHeader(http.StatusTeapot)
		})
		for range 50 {
			rec := httptest.NewRecorder()
			p.serve(h, rec, httptest.NewRequest("GET", "/", nil))
			if rec.Code != http.StatusTeapot {
				t.Fatalf("status %d: the handler's answer did not reach the request", rec.Code)
			}
		}
		// A worker is idle again only once back at its receive: a call
		// arriving just before (another CPU) starts the second.
		if len(goroutines) > 2 {
			t.Errorf("50 calls one after another ran on %d goroutines, want the 2 workers kept", len(goroutines))
		}
		if got := p.started.Load(); got > 2 {
			t.Errorf("%d workers started, want at most 2", got)
		}
	})

	t.Run("a call finding every worker busy runs on its own goroutine", func(t *testing.T) {
		p := newWorkers(1)
		t.Cleanup(p.stop)
		release := make(chan struct{})
		entered := make(chan struct{})
		blocking := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { close(entered); <-release })
		done := make(chan struct{})
		go func() {
			p.serve(blocking, httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
			close(done)
		}()
		<-entered
		served := false
		p.serve(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served = true }),
			httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		if !served {
			t.Error("a second call with the only worker busy was not served")
		}
		close(release)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the first call did not end")
		}
		if got := p.started.Load(); got != 1 {
			t.Errorf("%d workers started, want at most 1", got)
		}
	})

	t.Run("none kept: every call on its request's goroutine", func(t *testing.T) {
		p := newWorkers(0)
		caller := goroutineID()
		var ran uint64
		p.serve(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran = goroutineID() }),
			httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		if ran != caller {
			t.Errorf("ran on goroutine %d, want the caller's %d", ran, caller)
		}
	})

	t.Run("a panic is raised on the request's goroutine, and the worker lives on", func(t *testing.T) {
		p := newWorkers(1)
		t.Cleanup(p.stop)
		for _, tc := range []struct {
			name  string
			value any
			check func(any) error
		}{
			{"http.ErrAbortHandler as it is", http.ErrAbortHandler, func(v any) error {
				if v != http.ErrAbortHandler {
					return errors.New("not http.ErrAbortHandler")
				}
				return nil
			}},
			{"another with the worker's stack", "planted", func(v any) error {
				err, ok := v.(error)
				if !ok || !strings.Contains(err.Error(), "planted") || !strings.Contains(err.Error(), "workers_test.go") {
					return errors.New("does not carry the value and the worker's stack")
				}
				return nil
			}},
		} {
			got := func() (v any) {
				defer func() { v = recover() }()
				p.serve(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(tc.value) }),
					httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
				return nil
			}()
			if err := tc.check(got); err != nil {
				t.Errorf("%s: recovered %v: %v", tc.name, got, err)
			}
		}
		served := false
		p.serve(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served = true }),
			httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		if !served || p.started.Load() > 1 {
			t.Errorf("after the panics: served %v, %d workers, want true and at most the 1 kept", served, p.started.Load())
		}
	})

	t.Run("stop ends the idle workers", func(t *testing.T) {
		p := newWorkers(4)
		p.serve(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		p.stop()
		deadline := time.Now().Add(10 * time.Second)
		for p.started.Load() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d workers still running after stop", p.started.Load())
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// goroutineID is the current goroutine's id, from its stack's first line
// ("goroutine 42 [running]:"): tests only.
func goroutineID() uint64 {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	var id uint64
	for _, c := range strings.TrimPrefix(string(buf), "goroutine ") {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}
