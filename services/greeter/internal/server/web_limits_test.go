package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/services/greeter/internal/admission"
)

// TestWebAdmission: the HTTP port's calls are charged to their client as
// the gRPC port's are, and refused with the same status.
func TestWebAdmission(t *testing.T) {
	h := startWeb(t, withOptions(WithMaxRPCMemoryPerClient(minRPCMemory)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Response streams held in their handler fill the client's cap, as in
	// TestOverloadRefusals on the gRPC port.
	holder := connect.NewClient[greeterv1.SayHelloStreamRequest, greeterv1.SayHelloStreamResponse](httpClient(t, false, "127.0.0.1"), h.base+sayHelloStream)
	var held []*connect.ServerStreamForClient[greeterv1.SayHelloStreamResponse]
	for range int(minRPCMemory / admission.RPCCost) {
		ss, err := holder.CallServerStream(ctx, connect.NewRequest(&greeterv1.SayHelloStreamRequest{Name: "Ada", Count: 100, Interval: durationpb.New(time.Second)}))
		if err != nil {
			t.Fatal(err)
		}
		if !ss.Receive() {
			t.Fatalf("holding stream: %v", ss.Err())
		}
		held = append(held, ss)
	}

	refused := connect.NewClient[greeterv1.SayHelloRequest, greeterv1.SayHelloResponse](httpClient(t, false, "127.0.0.1"), h.base+sayHello, connect.WithProtoJSON())
	_, err := refused.CallUnary(context.Background(), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "Ada"}))
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
	// The refused call's charge ended with it, not at the reaper's tick.
	if n := h.srv.admission.InFlight(); n != len(held) {
		t.Errorf("after the refusal %d calls in flight, want the %d held", n, len(held))
	}
	if got := metricValue(t, h.metrics, "greeter_http_refused_total", map[string]string{"reason": "admission"}); got != 1 {
		t.Errorf("greeter_http_refused_total{reason=admission} = %v", got)
	}

	other := connect.NewClient[greeterv1.SayHelloRequest, greeterv1.SayHelloResponse](httpClient(t, false, "127.0.0.2"), h.base+sayHello)
	if _, err := other.CallUnary(context.Background(), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "Grace"})); err != nil {
		t.Fatalf("another client: %v", err)
	}

	// The charge ends with the call.
	for _, ss := range held {
		ss.Close()
	}
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
	h := startWeb(t, withOptions(WithRateLimit(0.001), WithRateLimitBurst(1), WithUnaryInterceptors(capture)))
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
	if lines := h.logs.lines("finished call", "SayHello", "ResourceExhausted", "protocol=connect"); len(lines) == 0 {
		t.Errorf("no access log line of the refused call, naming its protocol, in\n%s", h.logs)
	}
}

// recordingStats is a stats.Handler that notes what it is told of each
// call: the incoming metadata when the call is tagged, and its end.
type recordingStats struct {
	mu     sync.Mutex
	tagged []metadata.MD
	ends   []*stats.End
	events map[string]int
}

func (r *recordingStats) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tagged = append(r.tagged, md)
	return ctx
}

func (r *recordingStats) HandleRPC(_ context.Context, rs stats.RPCStats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.events == nil {
		r.events = map[string]int{}
	}
	r.events[fmt.Sprintf("%T", rs)]++
	if end, ok := rs.(*stats.End); ok {
		r.ends = append(r.ends, end)
	}
}

func (r *recordingStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (r *recordingStats) HandleConn(context.Context, stats.ConnStats) {}

// TestWebStatsHandlers: the server's stats handlers (tracing's) are told of
// every HTTP call as of a gRPC one, tagged with the incoming metadata, so
// that a browser's traceparent joins the trace, and told how it ended.
func TestWebStatsHandlers(t *testing.T) {
	rec := &recordingStats{}
	h := startWeb(t, withOptions(WithStatsHandler(rec)))
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	unary := connect.NewClient[greeterv1.SayHelloRequest, greeterv1.SayHelloResponse](httpClient(t, false, ""), h.base+sayHello, connect.WithProtoJSON())
	req := connect.NewRequest(&greeterv1.SayHelloRequest{Name: ""})
	req.Header().Set("traceparent", traceparent)
	if _, err := unary.CallUnary(context.Background(), req); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("invalid name: %v", err)
	}
	stream := connect.NewClient[greeterv1.SayHelloStreamRequest, greeterv1.SayHelloStreamResponse](httpClient(t, false, ""), h.base+sayHelloStream)
	ss, err := stream.CallServerStream(context.Background(), connect.NewRequest(&greeterv1.SayHelloStreamRequest{Name: "Ada", Count: 2}))
	if err != nil {
		t.Fatal(err)
	}
	for ss.Receive() {
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.tagged) != 2 || fmt.Sprint(rec.tagged[0].Get("traceparent")) != "["+traceparent+"]" {
		t.Errorf("tagged with %v, want 2 calls, the first with traceparent %s", rec.tagged, traceparent)
	}
	if len(rec.ends) != 2 || status.Code(rec.ends[0].Error) != codes.InvalidArgument || rec.ends[1].Error != nil {
		t.Errorf("ends %+v, want INVALID_ARGUMENT then OK", rec.ends)
	}
	for _, event := range []string{"*stats.Begin", "*stats.InHeader", "*stats.InPayload", "*stats.OutPayload", "*stats.End"} {
		if rec.events[event] == 0 {
			t.Errorf("no %s in %v", event, rec.events)
		}
	}
}

// TestWebConnectionCap: the HTTP port's connections count against the
// gRPC port's caps.
func TestWebConnectionCap(t *testing.T) {
	h := startWeb(t, withOptions(WithMaxConnectionsPerClient(1)))
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
	h := startWeb(t, withOptions(WithConnectionTimeout(300*time.Millisecond), WithFirstMessageTimeout(300*time.Millisecond)))
	addr := strings.TrimPrefix(h.base, "http://")
	for _, tc := range []struct{ desc, sent, answer string }{
		{"headers never end", "POST " + sayHello + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n", ""},
		{"body never comes", "POST " + sayHello + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnect-Protocol-Version: 1\r\nContent-Length: 20\r\n\r\n{\"name\":",
			"first-message-timeout"},
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
			if tc.answer != "" && !strings.Contains(string(got), tc.answer) {
				t.Errorf("server answered %q, want it to say %q", got, tc.answer)
			}
			t.Logf("server answered %q", got)
		})
	}
	t.Run("HTTP/2 body never comes", func(t *testing.T) {
		body, w := io.Pipe()
		defer w.Close()
		go io.WriteString(w, `{"name":`)
		req, err := http.NewRequest(http.MethodPost, h.base+sayHello, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Connect-Protocol-Version", "1")
		start := time.Now()
		res, err := httpClient(t, true, "").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		got, _ := io.ReadAll(res.Body)
		if held := time.Since(start); held > 5*time.Second {
			t.Errorf("call held %v", held)
		}
		if res.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(got), "first-message-timeout") {
			t.Errorf("server answered %d %q, want 504 naming --first-message-timeout", res.StatusCode, got)
		}
	})
	// And serves the others.
	c := connect.NewClient[greeterv1.SayHelloRequest, greeterv1.SayHelloResponse](httpClient(t, false, ""), h.base+sayHello)
	if _, err := c.CallUnary(context.Background(), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "Ada"})); err != nil {
		t.Fatal(err)
	}
}

// TestWebClientStreamBodyNeverComes: a client- or bidi-streaming call
// whose first message never comes ends within the first-message timeout,
// over HTTP/1.1 (a chunked body with no chunk) and h2c, and holds nothing
// after: connect-go's read of the body does not look at the call's
// context, which the admission cancels.
func TestWebClientStreamBodyNeverComes(t *testing.T) {
	const timeout = 300 * time.Millisecond
	h := startWeb(t, withOptions(WithFirstMessageTimeout(timeout)))
	addr := strings.TrimPrefix(h.base, "http://")
	// Within a few reaper ticks of the timeout; without the cut, the
	// calls are held until the test's own 10s deadlines.
	const bound = 3 * time.Second
	for _, method := range []string{sayHelloToAll, sayHelloChat} {
		t.Run("HTTP/1.1 "+method, func(t *testing.T) {
			if method == sayHelloChat {
				t.Skip("bidi streams need HTTP/2")
			}
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			io.WriteString(conn, "POST "+method+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/connect+json\r\nTransfer-Encoding: chunked\r\n\r\n")
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, _ := io.ReadAll(conn)
			if held := time.Since(start); held > bound {
				t.Errorf("call held %v, want under %v; answered %q", held, bound, got)
			}
		})
		t.Run("h2c "+method, func(t *testing.T) {
			body, w := io.Pipe()
			defer w.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+method, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/connect+json")
			start := time.Now()
			res, err := httpClient(t, true, "").Do(req)
			if err == nil {
				io.ReadAll(res.Body)
				res.Body.Close()
			}
			if held := time.Since(start); held > bound {
				t.Errorf("call held %v, want under %v", held, bound)
			}
		})
	}
	deadline := time.Now().Add(bound)
	for h.srv.admission.InFlight() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := h.srv.admission.InFlight(); n > 0 {
		t.Errorf("%d calls still admitted after their bodies were cut", n)
	}
}
