package web_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/services/greeter/internal/service"
	"github.com/acme/greeter/services/greeter/internal/web"
)

// pipeListener accepts the server ends of in-memory connections, whose
// writes wait until the other end reads: a client that reads nothing stalls
// the server's first write to it.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { close(l.closed); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func (l *pipeListener) dial() net.Conn {
	client, server := net.Pipe()
	l.conns <- server
	return client
}

// TestSendStallClosesConnection: a connection whose client reads nothing
// is closed once a write to it has waited the send-stall timeout, over
// HTTP/1.1 and HTTP/2, and counted; one whose client reads is served.
func TestSendStallClosesConnection(t *testing.T) {
	const timeout = 200 * time.Millisecond
	reg := prometheus.NewRegistry()
	cfg := testConfig(web.Service{Desc: &greeterv1.GreeterService_ServiceDesc, Impl: service.NewGreeter()})
	cfg.SendStallTimeout = timeout
	cfg.Registerer = reg
	srv, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis := newPipeListener()
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })

	body := `{"name":"Ada"}`
	request := fmt.Sprintf("POST /acme.greeter.v1.GreeterService/SayHello HTTP/1.1\r\nHost: greeter\r\nContent-Type: application/json\r\n"+
		"Connect-Protocol-Version: 1\r\nContent-Length: %d\r\n\r\n%s", len(body), body)

	t.Run("a client that reads is served", func(t *testing.T) {
		conn := lis.dial()
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, request); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK || !strings.Contains(string(got), "Hello, Ada") {
			t.Fatalf("%d %s, want 200 and a greeting", res.StatusCode, got)
		}
	})

	for i, tc := range []struct {
		name string
		send string // what the client sends before it stops reading
	}{
		{"HTTP/1.1: a call whose response is not read", request},
		{"HTTP/2: a connection whose settings are not read", http2.ClientPreface},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := lis.dial()
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, tc.send); err != nil {
				t.Fatal(err)
			}
			// Read nothing for longer than the timeout, then see the
			// connection closed: the stalled write gave up.
			time.Sleep(timeout * 2)
			start := time.Now()
			_, err := io.Copy(io.Discard, conn)
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("reading the rest: %v, want the connection closed", err)
			}
			if waited := time.Since(start); waited > 5*time.Second {
				t.Errorf("the connection closed %v after the client began to read, want at once", waited)
			}
			if got := sendStalls(t, reg); got != float64(i+1) {
				t.Errorf("greeter_http_send_stalls_total = %v, want %d", got, i+1)
			}
		})
	}
}

// sendStalls is greeter_http_send_stalls_total in reg.
func sendStalls(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "greeter_http_send_stalls_total" {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("greeter_http_send_stalls_total is not registered")
	return 0
}
