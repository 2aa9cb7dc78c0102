package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestHandler(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	m.Panics.Inc()
	var ready atomic.Bool
	srv := httptest.NewServer(m.Handler(ready.Load))
	t.Cleanup(srv.Close)

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	tests := []struct {
		path     string
		ready    bool
		code     int
		contains string
	}{
		{"/healthz", false, 200, "ok"},
		{"/readyz", false, 503, "not ready"},
		{"/readyz", true, 200, "ready"},
		{"/metrics", true, 200, "grpc_req_panics_recovered_total 1"},
		{"/metrics", true, 200, "go_goroutines"},
	}
	for _, tt := range tests {
		ready.Store(tt.ready)
		code, body := get(tt.path)
		if code != tt.code || !strings.Contains(body, tt.contains) {
			t.Errorf("GET %s (ready=%v) = %d %q, want %d containing %q", tt.path, tt.ready, code, body, tt.code, tt.contains)
		}
	}
}

func TestHandlerPprof(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		opts []HandlerOption
		code int
	}{
		{"off by default", nil, http.StatusNotFound},
		{"on with WithPprof", []HandlerOption{WithPprof()}, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(m.Handler(func() bool { return true }, tt.opts...))
			t.Cleanup(srv.Close)
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/cmdline"} {
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tt.code {
					t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, tt.code)
				}
			}
		})
	}
}
