package server

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
)

// The HTTP port's answers that connectrpc's conformance suite holds to the
// Connect and gRPC-Web specifications.

// connectEnvelopes is msgs as a Connect (or gRPC-Web) streaming body.
func connectEnvelopes(t *testing.T, msgs ...proto.Message) []byte {
	t.Helper()
	var body []byte
	for _, m := range msgs {
		data, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		body = append(body, 0, 0, 0, 0, 0)
		binary.BigEndian.PutUint32(body[len(body)-4:], uint32(len(data)))
		body = append(body, data...)
	}
	return body
}

// TestWebBidiOverHTTP1: a bidi call over HTTP/1.1 is served half duplex —
// every request, then every response — where connect-go alone refuses it
// (505), and no request is lost to the server answering the first before it
// has read the rest.
func TestWebBidiOverHTTP1(t *testing.T) {
	h := startWeb(t)
	names := []string{"Ada", "Grace", "Edsger"}
	var reqs []proto.Message
	for _, n := range names {
		reqs = append(reqs, &greeterv1.SayHelloChatRequest{Name: n})
	}
	for _, contentType := range []string{"application/connect+proto", "application/grpc-web+proto"} {
		t.Run(contentType, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.base+sayHelloChat, bytes.NewReader(connectEnvelopes(t, reqs...)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", contentType)
			resp, err := httpClient(t, false, "").Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ProtoMajor != 1 || resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s, want HTTP/1.1 200", resp.Proto, resp.Status)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for len(body) >= 5 {
				flags, n := body[0], binary.BigEndian.Uint32(body[1:5])
				msg := body[5 : 5+n]
				body = body[5+n:]
				if flags != 0 { // the end of the stream: no error in it
					if strings.Contains(string(msg), "code") {
						t.Errorf("the stream ended with %s", msg)
					}
					continue
				}
				var res greeterv1.SayHelloChatResponse
				if err := proto.Unmarshal(msg, &res); err != nil {
					t.Fatal(err)
				}
				got = append(got, res.GetMessage())
			}
			if len(got) != len(names) {
				t.Fatalf("%d responses %q, want one for each of %q", len(got), got, names)
			}
			for i, n := range names {
				if !strings.Contains(got[i], n) {
					t.Errorf("response %d = %q, want it to greet %s", i, got[i], n)
				}
			}
		})
	}
}

// TestWebConnectRouting: to a Connect unary call, a path where no method is
// served is HTTP's 404 (501 is the status of an RPC that is not
// implemented), and a verb a method does not take is 405 with the verbs it
// does in Allow.
func TestWebConnectRouting(t *testing.T) {
	h := startWeb(t)
	hc := httpClient(t, false, "")
	tests := []struct {
		desc, method, path string
		status             int
		allow              string
	}{
		{"unknown path", http.MethodPost, "/acme.greeter.v1.GreeterService/NoSuchMethod", http.StatusNotFound, ""},
		{"unknown service", http.MethodPost, "/no.such.v1.Service/Method", http.StatusNotFound, ""},
		{"DELETE", http.MethodDelete, sayHello, http.StatusMethodNotAllowed, "GET, POST"},
		{"PUT, method without GET", http.MethodPut, classicHello, http.StatusMethodNotAllowed, "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, h.base+tt.path, strings.NewReader(`{"name":"Ada"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Connect-Protocol-Version", "1")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("%s %s: %s %s, want %d", tt.method, tt.path, resp.Status, body, tt.status)
			}
			if got := resp.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow: %q, want %q", got, tt.allow)
			}
			if tt.status == http.StatusNotFound && !strings.Contains(string(body), `"code":"unimplemented"`) {
				t.Errorf("body %s, want the Connect error unimplemented", body)
			}
		})
	}
}
