package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
)

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
			h := startWeb(t, withOptions(WithDrainTimeout(tc.timeout)))
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

// TestWebHealthDuringDrain: during the drain delay the HTTP port still
// serves calls, and health over HTTP answers NOT_SERVING, as on the gRPC
// port.
func TestWebHealthDuringDrain(t *testing.T) {
	h := startWeb(t, withOptions(WithDrainDelay(time.Second)))
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
