package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/credentials"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"

	"github.com/acme/greeter/services/greeter/internal/tlsreload"
)

// TestWebTLS: the HTTP port serves the gRPC port's TLS and mutual TLS, over
// HTTP/2 (ALPN) and HTTP/1.1.
func TestWebTLS(t *testing.T) {
	ca, certFile, keyFile, caFile := pkiFiles(t)
	mutualTLS, err := tlsreload.New(certFile, keyFile, tlsreload.WithClientCA(caFile), tlsreload.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	h := startWeb(t, withOptions(WithTLS(mutualTLS.ServerConfig())),
		withClientCreds(credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{ca.Client(t, "alice").TLS(t)}})))
	base := strings.Replace(h.base, "http://", "https://", 1)
	client := func(h2 bool, certs ...tls.Certificate) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: certs}}
		tr.Protocols = new(http.Protocols)
		if h2 {
			tr.Protocols.SetHTTP2(true)
		} else {
			tr.Protocols.SetHTTP1(true)
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	alice := ca.Client(t, "alice").TLS(t)
	for _, tc := range []struct {
		desc   string
		client *http.Client
		opts   []connect.ClientOption
		ok     bool
	}{
		{"connect over HTTP/2", client(true, alice), nil, true},
		{"connect over HTTP/1.1", client(false, alice), []connect.ClientOption{connect.WithProtoJSON()}, true},
		{"grpc-web over HTTP/1.1", client(false, alice), []connect.ClientOption{connect.WithGRPCWeb()}, true},
		{"grpc over HTTP/2", client(true, alice), []connect.ClientOption{connect.WithGRPC()}, true},
		{"no client certificate", client(true), nil, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c := connect.NewClient[greeterv1.SayHelloRequest, greeterv1.SayHelloResponse](tc.client, base+sayHello, tc.opts...)
			res, err := c.CallUnary(context.Background(), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "Ada"}))
			if tc.ok && (err != nil || res.Msg.GetMessage() != "Hello, Ada!") {
				t.Fatalf("SayHello: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatal("SayHello without a client certificate succeeded")
			}
		})
	}
}

// TestWebIdleConnection: a kept-alive connection with no request is closed
// after the gRPC port's --max-connection-idle (before its first request, the
// connection timeout bounds it: TestWebSlowClients).
func TestWebIdleConnection(t *testing.T) {
	h := startWeb(t, withOptions(WithMaxConnectionIdle(300*time.Millisecond)))
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"name":"Ada"}`
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnect-Protocol-Version: 1\r\nContent-Length: %d\r\n\r\n%s", sayHello, len(body), body)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Close {
		t.Fatalf("%d, close %v: want 200 and the connection kept alive", res.StatusCode, res.Close)
	}
	start := time.Now()
	if n, err := conn.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: read %d, %v; want it closed", n, err)
	}
	if held := time.Since(start); held > 5*time.Second {
		t.Errorf("idle connection held %v", held)
	}
}

// TestWebSendStall: a client that reads nothing (here: an HTTP/2 client
// that grants no flow-control window) holds its call no longer than the
// gRPC port's --send-stall-timeout: the stream is reset, or its connection
// closed.
func TestWebSendStall(t *testing.T) {
	h := startWeb(t, withOptions(WithSendStallTimeout(300*time.Millisecond)))
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	var hdrs bytes.Buffer
	enc := hpack.NewEncoder(&hdrs)
	for _, f := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":authority", "greeter"}, {":path", sayHelloStream},
		{"content-type", "application/connect+json"},
	} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdrs.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	msg := []byte(`{"name":"Ada","count":10000}`)
	body := append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...)
	if err := fr.WriteData(1, true, body); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			// The admission's send-stall reap of the call, on the same
			// timeout, closes its connection as it does on the gRPC port;
			// whichever comes first ends the call.
			t.Logf("connection closed after %v", time.Since(start))
			return
		}
		if err != nil {
			t.Fatalf("after %v: %v, want the stream reset or the connection closed", time.Since(start), err)
		}
		if rst, ok := f.(*http2.RSTStreamFrame); ok && rst.StreamID == 1 {
			t.Logf("stream reset (%v) after %v", rst.ErrCode, time.Since(start))
			return
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			fr.WriteSettingsAck()
		}
	}
}
