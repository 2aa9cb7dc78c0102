package web_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/test/harness/metrics"
)

// envelope frames msg as Connect streaming and gRPC-Web do: flags, length,
// message.
func envelope(flags byte, msg []byte) []byte {
	out := make([]byte, 5, 5+len(msg))
	out[0] = flags
	binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
	return append(out, msg...)
}

// frames splits an enveloped body.
func frames(t *testing.T, body []byte) (flags []byte, msgs [][]byte) {
	t.Helper()
	for len(body) > 0 {
		if len(body) < 5 {
			t.Fatalf("truncated envelope %q", body)
		}
		n := binary.BigEndian.Uint32(body[1:5])
		if uint32(len(body)-5) < n {
			t.Fatalf("truncated message %q", body)
		}
		flags = append(flags, body[0])
		msgs = append(msgs, body[5:5+n])
		body = body[5+n:]
	}
	return flags, msgs
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type call struct {
	method  string
	path    string
	headers map[string]string
	body    []byte
}

func do(t *testing.T, base string, c call) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.path, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

const (
	sayHello       = "/acme.greeter.v1.GreeterService/SayHello"
	sayHelloStream = "/acme.greeter.v1.GreeterService/SayHelloStream"
)

var connectJSON = map[string]string{"Content-Type": "application/json", "Connect-Protocol-Version": "1"}

// TestHTTPCallers: each protocol of the HTTP port, as a plain HTTP client
// (curl) sends it, against the real binary.
func TestHTTPCallers(t *testing.T) {
	srv := startGreeter(t)
	base := "http://" + srv.HTTPAddr
	ada := mustMarshal(t, &greeterv1.SayHelloRequest{Name: "Ada"})
	stream := mustMarshal(t, &greeterv1.SayHelloStreamRequest{Name: "Ada", Count: 2})
	tests := []struct {
		desc     string
		call     call
		want     string // in the body, decoded (gRPC-Web trailer names are lower case, as connect-go writes them)
		protocol string
	}{
		{"Connect JSON", call{"POST", sayHello, connectJSON, []byte(`{"name":"Ada"}`)}, `{"message":"Hello, Ada!"}`, "connect"},
		{"Connect binary", call{"POST", sayHello, map[string]string{"Content-Type": "application/proto", "Connect-Protocol-Version": "1"}, ada}, "Hello, Ada!", "connect"},
		{"Connect GET", call{"GET", sayHello + "?connect=v1&encoding=json&message=" + url.QueryEscape(`{"name":"Ada"}`), nil, nil}, `{"message":"Hello, Ada!"}`, "connect-get"},
		{"Connect GET, binary base64", call{"GET", sayHello + "?connect=v1&encoding=proto&base64=1&message=" + base64.RawURLEncoding.EncodeToString(ada), nil, nil}, "Hello, Ada!", "connect-get"},
		{"Connect server stream", call{"POST", sayHelloStream, map[string]string{"Content-Type": "application/connect+json"}, envelope(0, []byte(`{"name":"Ada","count":2}`))}, `"sequence":2`, "connect"},
		{"gRPC-Web", call{"POST", sayHello, map[string]string{"Content-Type": "application/grpc-web+proto", "X-Grpc-Web": "1"}, envelope(0, ada)}, "grpc-status: 0", "grpc-web"},
		{"gRPC-Web text", call{"POST", sayHelloStream, map[string]string{"Content-Type": "application/grpc-web-text", "X-Grpc-Web": "1"}, []byte(base64.StdEncoding.EncodeToString(envelope(0, stream)))}, "grpc-status: 0", "grpc-web-text"},
		{"health", call{"POST", "/grpc.health.v1.Health/Check", connectJSON, []byte(`{}`)}, `"status":"SERVING"`, "connect"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			res, body := do(t, base, tt.call)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("%d %s", res.StatusCode, body)
			}
			if tt.protocol == "grpc-web-text" {
				body = decodeText(t, body)
			}
			if !bytes.Contains(body, []byte(tt.want)) {
				t.Errorf("body %q lacks %q", body, tt.want)
			}
		})
	}
	snap, err := metrics.Scrape(context.Background(), srv.MetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"connect", "connect-get", "grpc-web", "grpc-web-text"} {
		if n := snap.Sum("greeter_http_requests_total", map[string]string{"protocol": p, "status": "200"}); n == 0 {
			t.Errorf("greeter_http_requests_total{protocol=%q} is 0", p)
		}
	}
	if n := snap.Sum("grpc_server_handled_total", map[string]string{"grpc_method": "SayHello", "grpc_code": "OK"}); n < 5 {
		t.Errorf("grpc_server_handled_total{SayHello,OK} = %v: the HTTP calls did not go through the gRPC server's chain", n)
	}
}

// TestHTTPBadInput: the bad input list against the real binary.
func TestHTTPBadInput(t *testing.T) {
	srv := startGreeter(t, "--cors-allowed-origins", "https://app.example")
	base := "http://" + srv.HTTPAddr
	tests := []struct {
		desc   string
		call   call
		status int
		want   string
		reason string // greeter_http_refused_total's, if refused before connect-go
	}{
		{"malformed JSON", call{"POST", sayHello, connectJSON, []byte(`{"name":"Ada"`)}, 400, `"code":"invalid_argument"`, "malformed"},
		{"unknown field", call{"POST", sayHello, connectJSON, []byte(`{"nam":"Ada"}`)}, 400, `unknown field`, "malformed"},
		{"invalid name", call{"POST", sayHello, connectJSON, []byte(`{"name":"  "}`)}, 400, `"reason":"name.not_blank"`, ""},
		{"wrong content type", call{"POST", sayHello, map[string]string{"Content-Type": "text/plain"}, []byte("Ada")}, 415, "application/json", "protocol"},
		{"missing Connect-Protocol-Version", call{"POST", sayHello, map[string]string{"Content-Type": "application/json"}, []byte(`{"name":"Ada"}`)}, 400, `set Connect-Protocol-Version to \"1\"`, ""},
		{"wrong Connect-Protocol-Version", call{"POST", sayHello, map[string]string{"Content-Type": "application/json", "Connect-Protocol-Version": "7"}, []byte(`{"name":"Ada"}`)}, 400, `Connect-Protocol-Version must be \"1\"`, ""},
		{"body over the limit", call{"POST", sayHello, connectJSON, []byte(`{"name":"` + strings.Repeat("a", 70<<10) + `"}`)}, 429, "--max-recv-msg-size", "too-large"},
		{"unknown method", call{"POST", "/acme.greeter.v1.GreeterService/SayGoodbye", connectJSON, []byte(`{}`)}, 404, "unimplemented", "unknown-method"},
		{"disallowed origin", call{"POST", sayHello, map[string]string{"Content-Type": "application/json", "Connect-Protocol-Version": "1", "Origin": "https://evil.example"}, []byte(`{"name":"Ada"}`)}, 403, "--cors-allowed-origins", "origin"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			res, body := do(t, base, tt.call)
			if res.StatusCode != tt.status || !strings.Contains(string(body), tt.want) {
				t.Errorf("%d %s, want %d with %q", res.StatusCode, body, tt.status, tt.want)
			}
		})
	}
	snap, err := metrics.Scrape(context.Background(), srv.MetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	for reason, want := range map[string]float64{"malformed": 2, "protocol": 1, "too-large": 1, "unknown-method": 1, "origin": 1} {
		if got := snap.Sum("greeter_http_refused_total", map[string]string{"reason": reason}); got != want {
			t.Errorf("greeter_http_refused_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if got := snap.Sum("grpc_server_handled_total", map[string]string{"grpc_method": "SayHello", "grpc_code": "InvalidArgument"}); got != 1 {
		t.Errorf("grpc_server_handled_total{SayHello,InvalidArgument} = %v, want 1 (the invalid name)", got)
	}
	// Still serving.
	if res, body := do(t, base, call{"POST", sayHello, connectJSON, []byte(`{"name":"Ada"}`)}); res.StatusCode != 200 {
		t.Fatalf("after the bad input: %d %s", res.StatusCode, body)
	}
}

// TestHTTPDrain: on SIGTERM the HTTP port drains first; Connect streams in
// flight run to their end-of-stream message, and the process exits 0.
func TestHTTPDrain(t *testing.T) {
	srv := startGreeter(t, "--drain-timeout", "20s")
	base := "http://" + srv.HTTPAddr
	const streams, count = 8, 10
	type result struct {
		greetings int
		end       string
		err       error
	}
	results := make(chan result, streams)
	started := make(chan struct{}, streams)
	for range streams {
		go func() {
			body := envelope(0, []byte(fmt.Sprintf(`{"name":"Ada","count":%d,"interval":"0.1s"}`, count)))
			req, _ := http.NewRequest("POST", base+sayHelloStream, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/connect+json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer res.Body.Close()
			var r result
			var head [5]byte
			for {
				if _, err := io.ReadFull(res.Body, head[:]); err != nil {
					r.err = fmt.Errorf("after %d greetings: %w", r.greetings, err)
					break
				}
				msg := make([]byte, binary.BigEndian.Uint32(head[1:]))
				if _, err := io.ReadFull(res.Body, msg); err != nil {
					r.err = err
					break
				}
				if head[0]&2 != 0 {
					r.end = string(msg)
					break
				}
				if r.greetings++; r.greetings == 1 {
					started <- struct{}{}
				}
			}
			results <- r
		}()
	}
	for range streams {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("streams did not start")
		}
	}
	if err := srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range streams {
		r := <-results
		if r.err != nil || r.greetings != count || strings.TrimSpace(r.end) != "{}" {
			t.Errorf("stream: %d greetings, end-of-stream %q, %v; want %d and {}", r.greetings, r.end, r.err, count)
		}
	}
	if code, err := srv.Wait(20 * time.Second); err != nil || code != 0 {
		t.Fatalf("exit %d, %v\n%s", code, err, srv.Log())
	}
}

// decodeText decodes a gRPC-Web text body: base64 chunks, each padded.
func decodeText(t *testing.T, body []byte) []byte {
	t.Helper()
	if len(body)%4 != 0 {
		t.Fatalf("gRPC-Web text body of %d characters", len(body))
	}
	var out []byte
	for i := 0; i < len(body); i += 4 {
		b, err := base64.StdEncoding.DecodeString(string(body[i : i+4]))
		if err != nil {
			t.Fatalf("gRPC-Web text body %q: %v", body, err)
		}
		out = append(out, b...)
	}
	return out
}
