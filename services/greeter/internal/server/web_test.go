package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/gen/go/helloworld"

	"github.com/acme/greeter/services/greeter/internal/web"
)

// webHarness is a harness whose server also serves its HTTP port on a
// loopback TCP listener.
type webHarness struct {
	*harness
	web  *web.Server
	base string // http://127.0.0.1:port
}

func startWeb(t *testing.T, hopts ...harnessOption) *webHarness {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, append(hopts, func(c *config) { c.httpLis = lis })...)
	return &webHarness{harness: h, web: h.srv.web, base: "http://" + lis.Addr().String()}
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
	h := startWeb(t)
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
	h := startWeb(t)
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
