package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
)

// TestWebBadInput: each bad request gets an error a client can act on, is
// counted, and leaves the server serving.
func TestWebBadInput(t *testing.T) {
	h := startWeb(t, withOptions(WithAllowedOrigins("https://app.example")),
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
		reason  string // greeter_http_refused_total's, if refused before connect-go
	}{
		{"malformed JSON", "POST", sayHello, jsonHeaders, `{"name":`, 400, `"code":"invalid_argument"`, "malformed"},
		{"unknown field", "POST", sayHello, jsonHeaders, `{"nome":"Ada"}`, 400, `unknown field \"nome\"`, "malformed"},
		{"wrong JSON type", "POST", sayHello, jsonHeaders, `{"name":5}`, 400, `"code":"invalid_argument"`, "malformed"},
		{"wrong content type", "POST", sayHello, map[string]string{"Content-Type": "text/plain"}, `name=Ada`, 415, "application/json", "protocol"},
		{"unknown codec", "POST", sayHello, map[string]string{"Content-Type": "application/connect+xml"}, `<name/>`, 400, "use proto or json", "protocol"},
		{"missing Connect-Protocol-Version", "POST", sayHello, with(map[string]string{"Connect-Protocol-Version": ""}), `{"name":"Ada"}`, 400, `set Connect-Protocol-Version to \"1\"`, ""},
		{"wrong Connect-Protocol-Version", "POST", sayHello, with(map[string]string{"Connect-Protocol-Version": "2"}), `{"name":"Ada"}`, 400, `Connect-Protocol-Version must be \"1\"`, ""},
		{"GET without an encoding", "GET", sayHello + `?connect=v1&message={"name":"Ada"}`, nil, "", 400, "encoding=json or encoding=proto", "protocol"},
		{"GET without connect=v1", "GET", sayHello + `?encoding=json&message={"name":"Ada"}`, nil, "", 400, `set connect to \"v1\"`, ""},
		{"body over the limit", "POST", sayHello, jsonHeaders, `{"name":"` + strings.Repeat("a", 2000) + `"}`, 429, "largest message, 1024 bytes", "too-large"},
		{"unknown method", "POST", "/acme.greeter.v1.GreeterService/SayGoodbye", jsonHeaders, `{}`, 404, "acme.greeter.v1.GreeterService, grpc.health.v1.Health, helloworld.Greeter", "unknown-method"},
		{"unknown service", "POST", "/acme.greeter.v2.GreeterService/SayHello", jsonHeaders, `{}`, 404, "no method", "unknown-method"},
		{"reflection not served", "POST", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", map[string]string{"Content-Type": "application/connect+json"}, "", 200, `"code":"unimplemented"`, "unknown-method"},
		{"disallowed origin", "POST", sayHello, with(map[string]string{"Origin": "https://evil.example"}), `{"name":"Ada"}`, 403, "--cors-allowed-origins", "origin"},
		{"disallowed origin's preflight", "OPTIONS", sayHello, map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, "", 403, "--cors-allowed-origins", "origin"},
		{"bad gRPC-Web text", "POST", sayHello, map[string]string{"Content-Type": "application/grpc-web-text"}, "not base64!", 200, "Grpc-Status:[3]", "protocol"},
		{"PUT", "PUT", sayHello, jsonHeaders, `{"name":"Ada"}`, 405, "Allow:[GET, POST]", "protocol"},
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
	h := startWeb(t, withOptions(WithAllowedOrigins("https://app.example")))
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
