package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/gen/go/helloworld"

	"github.com/acme/greeter/services/greeter/internal/testpki"
	"github.com/acme/greeter/services/greeter/internal/tlsreload"
	"github.com/acme/greeter/services/greeter/internal/web"
)

// webHarness is a harness whose server also serves its HTTP port on a
// loopback TCP listener.
type webHarness struct {
	*harness
	web  *web.Server
	base string // http://127.0.0.1:port
}

func startWeb(t *testing.T, webOpts []web.Option, hopts ...harnessOption) *webHarness {
	t.Helper()
	h := start(t, hopts...)
	w, err := h.srv.Web(webOpts...)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- w.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		w.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &webHarness{harness: h, web: w, base: "http://" + lis.Addr().String()}
}

// httpClient speaks HTTP/1.1, or HTTP/2 without TLS (h2c) when h2c, from
// the loopback address from (empty: the system's choice).
func httpClient(t *testing.T, h2c bool, from string) *http.Client {
	tr := &http.Transport{}
	if h2c {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	if from != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		tr.DialContext = d.DialContext
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

const (
	sayHello       = "/acme.greeter.v1.GreeterService/SayHello"
	sayHelloStream = "/acme.greeter.v1.GreeterService/SayHelloStream"
	sayHelloToAll  = "/acme.greeter.v1.GreeterService/SayHelloToAll"
	sayHelloChat   = "/acme.greeter.v1.GreeterService/SayHelloChat"
	classicHello   = "/helloworld.Greeter/SayHello"
)

// webProtocols are the ways a client may call the HTTP port.
var webProtocols = []struct {
	name     string
	h2c      bool
	opts     []connect.ClientOption
	protocol string // greeter_http_requests_total's label
	codec    string
	streams  bool // client and bidi streaming (HTTP/2 only)
}{
	{"connect json HTTP/1.1", false, []connect.ClientOption{connect.WithProtoJSON()}, "connect", "json", false},
	{"connect proto HTTP/1.1", false, nil, "connect", "proto", false},
	{"connect GET", false, []connect.ClientOption{connect.WithHTTPGet(), connect.WithIdempotency(connect.IdempotencyNoSideEffects)}, "connect-get", "proto", false},
	{"connect json GET", false, []connect.ClientOption{connect.WithProtoJSON(), connect.WithHTTPGet(), connect.WithIdempotency(connect.IdempotencyNoSideEffects)}, "connect-get", "json", false},
	{"connect json h2c", true, []connect.ClientOption{connect.WithProtoJSON()}, "connect", "json", true},
	{"connect proto h2c gzip", true, []connect.ClientOption{connect.WithSendGzip()}, "connect", "proto", true},
	{"grpc-web HTTP/1.1", false, []connect.ClientOption{connect.WithGRPCWeb()}, "grpc-web", "proto", false},
	{"grpc-web json h2c", true, []connect.ClientOption{connect.WithGRPCWeb(), connect.WithProtoJSON()}, "grpc-web", "json", true},
	{"grpc h2c", true, []connect.ClientOption{connect.WithGRPC()}, "grpc", "proto", true},
}

func TestWebProtocols(t *testing.T) {
	h := startWeb(t, nil)
	for _, p := range webProtocols {
		t.Run(p.name, func(t *testing.T) {
			hc := httpClient(t, p.h2c, "")
			ctx := context.Background()
			before := metricValue(t, h.metrics, "greeter_http_requests_total", map[string]string{"protocol": p.protocol, "codec": p.codec, "status": "200"})

			unary := connect.NewClient[greeterv1.SayHelloRequest, greeterv1.SayHelloResponse](hc, h.base+sayHello, p.opts...)
			res, err := unary.CallUnary(ctx, connect.NewRequest(&greeterv1.SayHelloRequest{Name: "  Ada "}))
			if err != nil {
				t.Fatalf("SayHello: %v", err)
			}
			if got := res.Msg.GetMessage(); got != "Hello, Ada!" {
				t.Errorf("SayHello = %q", got)
			}

			// helloworld's contract is frozen without idempotency levels:
			// its methods are not served over GET.
			if p.protocol != "connect-get" {
				classic := connect.NewClient[helloworld.HelloRequest, helloworld.HelloReply](hc, h.base+classicHello, p.opts...)
				if _, err := classic.CallUnary(ctx, connect.NewRequest(&helloworld.HelloRequest{Name: "Grace"})); err != nil {
					t.Errorf("helloworld SayHello: %v", err)
				}
			}

			stream := connect.NewClient[greeterv1.SayHelloStreamRequest, greeterv1.SayHelloStreamResponse](hc, h.base+sayHelloStream, p.opts...)
			ss, err := stream.CallServerStream(ctx, connect.NewRequest(&greeterv1.SayHelloStreamRequest{Name: "Linus", Count: 3}))
			if err != nil {
				t.Fatalf("SayHelloStream: %v", err)
			}
			var seq []int32
			for ss.Receive() {
				seq = append(seq, ss.Msg().GetSequence())
			}
			if err := ss.Err(); err != nil || fmt.Sprint(seq) != "[1 2 3]" {
				t.Errorf("SayHelloStream: %v, sequence %v", err, seq)
			}
			ss.Close()

			after := metricValue(t, h.metrics, "greeter_http_requests_total", map[string]string{"protocol": p.protocol, "codec": p.codec, "status": "200"})
			// GET carries unary calls only.
			want := 3.0
			if p.protocol == "connect-get" {
				want = 1
			}
			if after-before < want {
				t.Errorf("greeter_http_requests_total{protocol=%q,codec=%q} grew by %v, want %v", p.protocol, p.codec, after-before, want)
			}
			if !p.streams {
				return
			}

			toAll := connect.NewClient[greeterv1.SayHelloToAllRequest, greeterv1.SayHelloToAllResponse](hc, h.base+sayHelloToAll, p.opts...)
			cs := toAll.CallClientStream(ctx)
			for _, n := range []string{"Ada", "Grace"} {
				if err := cs.Send(&greeterv1.SayHelloToAllRequest{Name: n}); err != nil {
					t.Fatal(err)
				}
			}
			all, err := cs.CloseAndReceive()
			if err != nil || all.Msg.GetCount() != 2 {
				t.Errorf("SayHelloToAll: %v, %v", all, err)
			}

			chat := connect.NewClient[greeterv1.SayHelloChatRequest, greeterv1.SayHelloChatResponse](hc, h.base+sayHelloChat, p.opts...)
			bidi := chat.CallBidiStream(ctx)
			for _, n := range []string{"Ada", "Grace"} {
				if err := bidi.Send(&greeterv1.SayHelloChatRequest{Name: n}); err != nil {
					t.Fatal(err)
				}
				got, err := bidi.Receive()
				if err != nil || !strings.Contains(got.GetMessage(), n) {
					t.Fatalf("SayHelloChat: %v, %v", got, err)
				}
			}
			bidi.CloseRequest()
			if _, err := bidi.Receive(); !errors.Is(err, io.EOF) {
				t.Errorf("SayHelloChat end: %v, want EOF", err)
			}
			bidi.CloseResponse()
		})
	}
}

// TestWebValidation: every protocol gets the gRPC port's validation, with
// the BadRequest details and the rule ids.
func TestWebValidation(t *testing.T) {
	h := startWeb(t, nil)
	for _, p := range webProtocols {
		t.Run(p.name, func(t *testing.T) {
			hc := httpClient(t, p.h2c, "")
			for _, tc := range []struct {
				name, field, rule string
			}{
				{"", "name", "required"},
				{"   ", "name", "name.not_blank"},
				{strings.Repeat("a", 101), "name", "string.max_len"},
			} {
				c := connect.NewClient[greeterv1.SayHelloRequest, greeterv1.SayHelloResponse](hc, h.base+sayHello, p.opts...)
				_, err := c.CallUnary(context.Background(), connect.NewRequest(&greeterv1.SayHelloRequest{Name: tc.name}))
				if connect.CodeOf(err) != connect.CodeInvalidArgument {
					t.Fatalf("name %q: %v, want invalid_argument", tc.name, err)
				}
				if got := connectViolations(t, err); !strings.Contains(got, tc.field+"/"+tc.rule) {
					t.Errorf("name %q: violations %s, want %s/%s", tc.name, got, tc.field, tc.rule)
				}
			}
		})
	}
}

func connectViolations(t *testing.T, err error) string {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%v is not a Connect error", err)
	}
	var out []string
	for _, d := range ce.Details() {
		v, err := d.Value()
		if err != nil {
			t.Fatalf("detail %s: %v", d.Type(), err)
		}
		if br, ok := v.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				out = append(out, fv.GetField()+"/"+fv.GetReason())
			}
		}
	}
	return strings.Join(out, " ")
}

// TestWebBadInput: each bad request gets an error a client can act on, is
// counted, and leaves the server serving.
func TestWebBadInput(t *testing.T) {
	h := startWeb(t, []web.Option{web.WithAllowedOrigins("https://app.example")},
		withOptions(WithMaxRecvMsgSize(1024)))
	jsonHeaders := map[string]string{"Content-Type": "application/json", "Connect-Protocol-Version": "1"}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range jsonHeaders {
			out[k] = v
		}
		for k, v := range extra {
			if v == "" {
				delete(out, k)
				continue
			}
			out[k] = v
		}
		return out
	}
	tests := []struct {
		desc    string
		method  string
		path    string
		headers map[string]string
		body    string
		status  int
		message string // in the body
		reason  string // greeter_http_refused_total's, if refused before gRPC
	}{
		{"malformed JSON", "POST", sayHello, jsonHeaders, `{"name":`, 400, `"code":"invalid_argument"`, "malformed"},
		{"unknown field", "POST", sayHello, jsonHeaders, `{"nome":"Ada"}`, 400, `unknown field \"nome\"`, "malformed"},
		{"wrong JSON type", "POST", sayHello, jsonHeaders, `{"name":5}`, 400, `"code":"invalid_argument"`, "malformed"},
		{"wrong content type", "POST", sayHello, map[string]string{"Content-Type": "text/plain"}, `name=Ada`, 415, "application/json", "protocol"},
		{"unknown codec", "POST", sayHello, map[string]string{"Content-Type": "application/connect+xml"}, `<name/>`, 400, "use proto or json", "protocol"},
		{"missing Connect-Protocol-Version", "POST", sayHello, with(map[string]string{"Connect-Protocol-Version": ""}), `{"name":"Ada"}`, 400, "Connect-Protocol-Version: 1", "protocol"},
		{"wrong Connect-Protocol-Version", "POST", sayHello, with(map[string]string{"Connect-Protocol-Version": "2"}), `{"name":"Ada"}`, 400, "Connect-Protocol-Version: 1", "protocol"},
		{"GET without an encoding", "GET", sayHello + `?connect=v1&message={"name":"Ada"}`, nil, "", 400, "encoding=json or encoding=proto", "protocol"},
		{"GET without connect=v1", "GET", sayHello + `?encoding=json&message={"name":"Ada"}`, nil, "", 400, "connect=v1", "protocol"},
		{"body over the limit", "POST", sayHello, jsonHeaders, `{"name":"` + strings.Repeat("a", 2000) + `"}`, 429, "largest message, 1024 bytes", "too-large"},
		{"unknown method", "POST", "/acme.greeter.v1.GreeterService/SayGoodbye", jsonHeaders, `{}`, 501, "acme.greeter.v1.GreeterService, grpc.health.v1.Health, helloworld.Greeter", "unknown-method"},
		{"unknown service", "POST", "/acme.greeter.v2.GreeterService/SayHello", jsonHeaders, `{}`, 501, "no method", "unknown-method"},
		{"reflection not served", "POST", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", map[string]string{"Content-Type": "application/connect+json"}, "", 200, `"code":"unimplemented"`, "unknown-method"},
		{"disallowed origin", "POST", sayHello, with(map[string]string{"Origin": "https://evil.example"}), `{"name":"Ada"}`, 403, "--cors-allowed-origins", "origin"},
		{"disallowed origin's preflight", "OPTIONS", sayHello, map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, "", 403, "--cors-allowed-origins", "origin"},
		{"bad gRPC-Web text", "POST", sayHello, map[string]string{"Content-Type": "application/grpc-web-text"}, "not base64!", 200, "Grpc-Status:[3]", "protocol"},
		{"PUT", "PUT", sayHello, jsonHeaders, `{"name":"Ada"}`, 415, "call with POST", "protocol"},
	}
	hc := httpClient(t, false, "")
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			var before float64
			if tt.reason != "" {
				before = metricValue(t, h.metrics, "greeter_http_refused_total", map[string]string{"reason": tt.reason})
			}
			req, err := http.NewRequest(tt.method, h.base+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			res, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.status || !strings.Contains(string(body)+fmt.Sprint(res.Header), tt.message) {
				t.Errorf("%d %s %v, want %d with %q", res.StatusCode, body, res.Header, tt.status, tt.message)
			}
			if tt.reason != "" {
				if after := metricValue(t, h.metrics, "greeter_http_refused_total", map[string]string{"reason": tt.reason}); after != before+1 {
					t.Errorf("greeter_http_refused_total{reason=%q} = %v, want %v", tt.reason, after, before+1)
				}
			}
		})
	}
	// Still serving.
	c := connect.NewClient[greeterv1.SayHelloRequest, greeterv1.SayHelloResponse](hc, h.base+sayHello, connect.WithProtoJSON())
	if _, err := c.CallUnary(context.Background(), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "Ada"})); err != nil {
		t.Fatalf("after the bad input: %v", err)
	}
}

func TestWebCORS(t *testing.T) {
	h := startWeb(t, []web.Option{web.WithAllowedOrigins("https://app.example")})
	hc := httpClient(t, false, "")
	req, _ := http.NewRequest("OPTIONS", h.base+sayHello, nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "connect-protocol-version,content-type,traceparent")
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent ||
		res.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		res.Header.Get("Access-Control-Max-Age") != "7200" ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "connect-protocol-version") {
		t.Errorf("preflight: %d %v", res.StatusCode, res.Header)
	}

	req, _ = http.NewRequest("POST", h.base+sayHello, strings.NewReader(`{"name":"Ada"}`))
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	res, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	exposed := res.Header.Get("Access-Control-Expose-Headers")
	if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(exposed, "Grpc-Status-Details-Bin") || !strings.Contains(strings.ToLower(exposed), VersionHeader) {
		t.Errorf("call: %d %v", res.StatusCode, res.Header)
	}
}

// TestWebAdmission: the HTTP port's calls are charged to their client as
// the gRPC port's are, and refused with the same status.
func TestWebAdmission(t *testing.T) {
	perCall := int64(1024 + 96<<10 + 5<<18) // a streaming call's charge
	h := startWeb(t, nil, withOptions(WithMaxRecvMsgSize(1024), WithMaxRPCMemoryPerClient(perCall)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	holder := connect.NewClient[greeterv1.SayHelloStreamRequest, greeterv1.SayHelloStreamResponse](httpClient(t, false, "127.0.0.1"), h.base+sayHelloStream)
	ss, err := holder.CallServerStream(ctx, connect.NewRequest(&greeterv1.SayHelloStreamRequest{Name: "Ada", Count: 100, Interval: durationpb.New(time.Second)}))
	if err != nil {
		t.Fatal(err)
	}
	if !ss.Receive() {
		t.Fatalf("holding stream: %v", ss.Err())
	}

	refused := connect.NewClient[greeterv1.SayHelloRequest, greeterv1.SayHelloResponse](httpClient(t, false, "127.0.0.1"), h.base+sayHello, connect.WithProtoJSON())
	_, err = refused.CallUnary(context.Background(), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "Ada"}))
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("second call of the client: %v, want resource_exhausted", err)
	}
	var ce *connect.Error
	errors.As(err, &ce)
	retry := false
	for _, d := range ce.Details() {
		if v, _ := d.Value(); v != nil {
			_, retry = v.(*errdetails.RetryInfo)
		}
	}
	if !retry {
		t.Errorf("refusal %v has no RetryInfo", err)
	}
	if got := metricValue(t, h.metrics, "greeter_http_refused_total", map[string]string{"reason": "admission"}); got != 1 {
		t.Errorf("greeter_http_refused_total{reason=admission} = %v", got)
	}

	other := connect.NewClient[greeterv1.SayHelloRequest, greeterv1.SayHelloResponse](httpClient(t, false, "127.0.0.2"), h.base+sayHello)
	if _, err := other.CallUnary(context.Background(), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "Grace"})); err != nil {
		t.Fatalf("another client: %v", err)
	}

	// The charge ends with the call.
	ss.Close()
	deadline := time.Now().Add(5 * time.Second)
	for h.srv.admission.InFlight() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := refused.CallUnary(context.Background(), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "Ada"})); err != nil {
		t.Fatalf("after the stream ended: %v", err)
	}
}

// TestWebRateLimitAndInterceptors: the rate limit and the chain's
// interceptors see HTTP calls, with their headers as metadata (a browser's
// traceparent reaches the tracing stats handler this way).
func TestWebRateLimitAndInterceptors(t *testing.T) {
	seen := make(chan metadata.MD, 10)
	capture := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		seen <- md
		return handler(ctx, req)
	}
	h := startWeb(t, nil, withOptions(WithRateLimit(0.001), WithRateLimitBurst(1), WithUnaryInterceptors(capture)))
	c := connect.NewClient[greeterv1.SayHelloRequest, greeterv1.SayHelloResponse](httpClient(t, false, ""), h.base+sayHello, connect.WithProtoJSON())
	req := connect.NewRequest(&greeterv1.SayHelloRequest{Name: "Ada"})
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req.Header().Set("traceparent", traceparent)
	if _, err := c.CallUnary(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if md := <-seen; fmt.Sprint(md.Get("traceparent")) != "["+traceparent+"]" {
		t.Errorf("metadata %v has no traceparent %s", md, traceparent)
	}
	_, err := c.CallUnary(context.Background(), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "Ada"}))
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("over the rate limit: %v, want resource_exhausted", err)
	}
	if lines := h.logs.lines("finished call", "SayHello", "ResourceExhausted"); len(lines) == 0 {
		t.Errorf("no access log line of the refused call in\n%s", h.logs)
	}
}

// TestWebConnectionCap: the HTTP port's connections count against the
// gRPC port's caps.
func TestWebConnectionCap(t *testing.T) {
	h := startWeb(t, nil, withOptions(WithMaxConnectionsPerClient(1)))
	addr := strings.TrimPrefix(h.base, "http://")
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	fmt.Fprintf(first, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := first.Read(make([]byte, 1)); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	second, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := second.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("second connection from the same IP: read %d, %v; want it closed", n, err)
	}
	// Another IP is let in.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	third, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	fmt.Fprintf(third, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := third.Read(make([]byte, 1)); err != nil {
		t.Fatalf("connection from another IP: %v", err)
	}
}

// TestWebSlowClients: a client that sends its headers or its body slowly
// holds its connection no longer than the connection and first-message
// timeouts.
func TestWebSlowClients(t *testing.T) {
	h := startWeb(t, nil, withOptions(WithConnectionTimeout(300*time.Millisecond), WithFirstMessageTimeout(300*time.Millisecond)))
	addr := strings.TrimPrefix(h.base, "http://")
	for _, tc := range []struct{ desc, sent string }{
		{"headers never end", "POST " + sayHello + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"},
		{"body never comes", "POST " + sayHello + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnect-Protocol-Version: 1\r\nContent-Length: 20\r\n\r\n{\"name\":"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			io.WriteString(conn, tc.sent)
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, _ := io.ReadAll(conn)
			if held := time.Since(start); held > 5*time.Second {
				t.Errorf("connection held %v", held)
			}
			t.Logf("server answered %q", got)
		})
	}
	// And serves the others.
	c := connect.NewClient[greeterv1.SayHelloRequest, greeterv1.SayHelloResponse](httpClient(t, false, ""), h.base+sayHello)
	if _, err := c.CallUnary(context.Background(), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "Ada"})); err != nil {
		t.Fatal(err)
	}
}

// TestWebDrain: Shutdown drains the HTTP port first; an open Connect stream
// runs to its proper end, and one cut off by the drain timeout ends with a
// status, never "missing trailer".
func TestWebDrain(t *testing.T) {
	for _, tc := range []struct {
		desc     string
		timeout  time.Duration
		count    int32
		wantCode connect.Code // 0: ends without error
	}{
		{"stream ends within the drain", 10 * time.Second, 4, 0},
		{"stream cut off by the drain timeout", 300 * time.Millisecond, 100, connect.CodeUnavailable},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			h := startWeb(t, nil, withOptions(WithDrainTimeout(tc.timeout)))
			c := connect.NewClient[greeterv1.SayHelloStreamRequest, greeterv1.SayHelloStreamResponse](httpClient(t, false, ""), h.base+sayHelloStream)
			ss, err := c.CallServerStream(context.Background(), connect.NewRequest(&greeterv1.SayHelloStreamRequest{
				Name: "Ada", Count: tc.count, Interval: durationpb.New(100 * time.Millisecond)}))
			if err != nil {
				t.Fatal(err)
			}
			if !ss.Receive() {
				t.Fatal(ss.Err())
			}
			shut := make(chan error, 1)
			go func() { shut <- h.srv.Shutdown(context.Background()) }()
			n := 1
			for ss.Receive() {
				n++
			}
			err = ss.Err()
			if tc.wantCode == 0 {
				if err != nil || n != int(tc.count) {
					t.Errorf("stream: %d greetings, %v; want %d and a clean end", n, err, tc.count)
				}
			} else if connect.CodeOf(err) != tc.wantCode || strings.Contains(fmt.Sprint(err), "trailer") {
				t.Errorf("stream cut off: %v, want %v", err, tc.wantCode)
			}
			<-shut
			// The port no longer accepts calls.
			cl := connect.NewClient[greeterv1.SayHelloRequest, greeterv1.SayHelloResponse](httpClient(t, false, ""), h.base+sayHello)
			if _, err := cl.CallUnary(context.Background(), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "Ada"})); connect.CodeOf(err) != connect.CodeUnavailable {
				t.Errorf("call after the drain: %v, want unavailable", err)
			}
		})
	}
}

// TestWebTLS: the HTTP port serves the gRPC port's TLS and mutual TLS, over
// HTTP/2 (ALPN) and HTTP/1.1.
func TestWebTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	certFile, keyFile := ca.Server(t, "greeter").WriteFiles(t, dir, "server")
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	mutualTLS, err := tlsreload.New(certFile, keyFile, tlsreload.WithClientCA(caFile), tlsreload.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	h := startWeb(t, nil, withOptions(WithTLS(mutualTLS.ServerConfig())),
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

// TestWebMaxConcurrentStreams: an HTTP/2 client is told the gRPC port's
// --max-concurrent-streams in the server's SETTINGS.
func TestWebMaxConcurrentStreams(t *testing.T) {
	h := startWeb(t, nil, withOptions(WithMaxConcurrentStreams(7)))
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	settings, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %v, want SETTINGS", f)
	}
	if v, ok := settings.Value(http2.SettingMaxConcurrentStreams); !ok || v != 7 {
		t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS = %d (sent: %v), want 7", v, ok)
	}
}

// TestWebIdleConnection: a kept-alive connection with no request is closed
// after the gRPC port's --max-connection-idle (before its first request, the
// connection timeout bounds it: TestWebSlowClients).
func TestWebIdleConnection(t *testing.T) {
	h := startWeb(t, nil, withOptions(WithMaxConnectionIdle(300*time.Millisecond)))
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

// TestWebHealthDuringDrain: during the drain delay the HTTP port still
// serves calls, and health over HTTP answers NOT_SERVING, as on the gRPC
// port.
func TestWebHealthDuringDrain(t *testing.T) {
	h := startWeb(t, nil, withOptions(WithDrainDelay(time.Second)))
	hc := httpClient(t, false, "")
	check := func() string {
		res, err := hc.Post(h.base+"/grpc.health.v1.Health/Check", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return string(body)
	}
	// Connect-Protocol-Version is required: http.Post cannot set it.
	if got := check(); !strings.Contains(got, "Connect-Protocol-Version") {
		t.Fatalf("health without Connect-Protocol-Version: %s", got)
	}
	c := connect.NewClient[greeterv1.SayHelloRequest, greeterv1.SayHelloResponse](hc, h.base+sayHello, connect.WithProtoJSON())
	health := func() string {
		req, _ := http.NewRequest("POST", h.base+"/grpc.health.v1.Health/Check", strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Connect-Protocol-Version", "1")
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return string(body)
	}
	if got := health(); !strings.Contains(got, `"SERVING"`) {
		t.Fatalf("health before the drain: %s", got)
	}
	shut := make(chan error, 1)
	go func() { shut <- h.srv.Shutdown(context.Background()) }()
	deadline := time.Now().Add(900 * time.Millisecond)
	for h.srv.Ready() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := health(); !strings.Contains(got, `"NOT_SERVING"`) {
		t.Errorf("health during the drain delay: %s", got)
	}
	if _, err := c.CallUnary(context.Background(), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "Ada"})); err != nil {
		t.Errorf("a call during the drain delay: %v", err)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}
