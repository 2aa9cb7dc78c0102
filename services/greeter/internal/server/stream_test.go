package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// promptly bounds how long a handler may take to notice a cancellation. It
// is a failure deadline, not synchronisation: tests wait on events and only
// fail if those do not come in time.
const promptly = 5 * time.Second

func waitReturn(t *testing.T, returned <-chan error) error {
	t.Helper()
	select {
	case err := <-returned:
		return err
	case <-time.After(promptly):
		t.Fatal("the stream handler did not return")
		return nil
	}
}

func TestSayHelloStream(t *testing.T) {
	h := start(t)
	stream, err := h.greeter.SayHelloStream(t.Context(), &greeterv1.SayHelloStreamRequest{
		Name: " Ada ", Count: 3, Interval: durationpb.New(time.Millisecond),
	})
	if err != nil {
		t.Fatal(err)
	}
	for want := int32(1); ; want++ {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if want != 4 {
				t.Fatalf("stream ended after %d greetings, want 3", want-1)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetMessage() != "Hello, Ada!" || resp.GetSequence() != want {
			t.Fatalf("got %q #%d, want \"Hello, Ada!\" #%d", resp.GetMessage(), resp.GetSequence(), want)
		}
	}
}

func TestSayHelloStreamValidation(t *testing.T) {
	h := start(t)
	tests := []struct {
		desc string
		req  *greeterv1.SayHelloStreamRequest
		want violation
	}{
		{"no name", &greeterv1.SayHelloStreamRequest{Count: 1}, violation{"name", "required"}},
		{"blank name", &greeterv1.SayHelloStreamRequest{Name: "  ", Count: 1}, violation{"name", "name.not_blank"}},
		{"count 0", &greeterv1.SayHelloStreamRequest{Name: "Ada"}, violation{"count", "int32.gte_lte"}},
		{"count 10001", &greeterv1.SayHelloStreamRequest{Name: "Ada", Count: 10001}, violation{"count", "int32.gte_lte"}},
		{"negative interval", &greeterv1.SayHelloStreamRequest{Name: "Ada", Count: 1, Interval: durationpb.New(-time.Second)}, violation{"interval", "duration.gte_lte"}},
		{"interval over 10s", &greeterv1.SayHelloStreamRequest{Name: "Ada", Count: 1, Interval: durationpb.New(10*time.Second + 1)}, violation{"interval", "duration.gte_lte"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			stream, err := h.greeter.SayHelloStream(t.Context(), tt.req)
			if err == nil {
				_, err = stream.Recv()
			}
			if got := badRequest(t, err); !slices.Contains(got, tt.want) {
				t.Fatalf("violations %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSayHelloStreamCancel(t *testing.T) {
	hook, returned := handlerReturns()
	// Fixed 64 KiB windows (no BDP growth): 10,000 greetings of 100
	// characters are about 1 MiB, so the server must block in Send.
	h := start(t, withOptions(WithStreamInterceptors(hook)),
		withDialOptions(grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16)))
	tests := []struct {
		desc     string
		interval time.Duration // the server waits this long between greetings
	}{
		{"while waiting", 10 * time.Second},
		{"while blocked sending", 0},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			stream, err := h.greeter.SayHelloStream(ctx, &greeterv1.SayHelloStreamRequest{
				Name: strings.Repeat("a", 100), Count: 10000, Interval: durationpb.New(tt.interval),
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := stream.Recv(); err != nil {
				t.Fatal(err)
			}
			cancel()
			if got := status.Code(waitReturn(t, returned)); got != codes.Canceled {
				t.Errorf("handler returned %v, want Canceled", got)
			}
		})
	}
}

func TestSayHelloStreamDeadline(t *testing.T) {
	hook, returned := handlerReturns()
	h := start(t, withOptions(WithStreamInterceptors(hook)))
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	stream, err := h.greeter.SayHelloStream(ctx, &greeterv1.SayHelloStreamRequest{
		Name: "Ada", Count: 3, Interval: durationpb.New(10 * time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("second Recv: %v, want DeadlineExceeded", err)
	}
	// The server's own timer (from grpc-timeout) and the client's reset
	// race: either way the handler has stopped.
	if got := status.Code(waitReturn(t, returned)); got != codes.DeadlineExceeded && got != codes.Canceled {
		t.Errorf("handler returned %v, want DeadlineExceeded or Canceled", got)
	}
}

func TestSayHelloToAll(t *testing.T) {
	h := start(t)
	many := make([]string, 1000)
	for i := range many {
		many[i] = fmt.Sprintf("P%d", i+1)
	}
	tests := []struct {
		desc      string
		names     []string
		want      string
		wantCount int64
	}{
		{"one", []string{"Ada"}, "Hello, Ada!", 1},
		{"three", []string{"Ada", " Grace", "Linus "}, "Hello, Ada, Grace and Linus!", 3},
		{"a thousand", many, "Hello, P1, P2, P3, P4, P5, P6, P7, P8, P9, P10 and 990 others!", 1000},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			stream, err := h.greeter.SayHelloToAll(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range tt.names {
				if err := stream.Send(&greeterv1.SayHelloToAllRequest{Name: n}); err != nil {
					t.Fatal(err)
				}
			}
			resp, err := stream.CloseAndRecv()
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetMessage() != tt.want || resp.GetCount() != tt.wantCount {
				t.Fatalf("got %q (%d), want %q (%d)", resp.GetMessage(), resp.GetCount(), tt.want, tt.wantCount)
			}
		})
	}
}

func TestSayHelloToAllInvalid(t *testing.T) {
	h := start(t)
	t.Run("empty stream", func(t *testing.T) {
		stream, err := h.greeter.SayHelloToAll(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.CloseAndRecv(); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("got %v, want InvalidArgument", err)
		}
	})
	tests := []struct {
		desc string
		bad  string
		want violation
	}{
		{"empty name", "", violation{"name", "required"}},
		{"long name", strings.Repeat("x", 101), violation{"name", "string.max_len"}},
		{"blank name", "\u3000", violation{"name", "name.not_blank"}},
		{"control character", "A\tda", violation{"name", "name.no_control_characters"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			stream, err := h.greeter.SayHelloToAll(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			// A bad name after good ones fails the call. Send may see the
			// server's early end as io.EOF; the status comes with CloseAndRecv.
			for _, n := range []string{"Ada", tt.bad, "Grace"} {
				if err := stream.Send(&greeterv1.SayHelloToAllRequest{Name: n}); err != nil {
					break
				}
			}
			_, err = stream.CloseAndRecv()
			if got := badRequest(t, err); !slices.Contains(got, tt.want) {
				t.Fatalf("violations %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSayHelloChat(t *testing.T) {
	h := start(t)
	stream, err := h.greeter.SayHelloChat(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Each answer arrives before the next name is sent: answers are
	// immediate, not batched until half-close.
	for i, n := range []string{"Ada", " Grace ", "Linus"} {
		if err := stream.Send(&greeterv1.SayHelloChatRequest{Name: n}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		want := "Hello, " + strings.TrimSpace(n) + "!"
		if resp.GetMessage() != want || resp.GetSequence() != int64(i+1) {
			t.Fatalf("got %q #%d, want %q #%d", resp.GetMessage(), resp.GetSequence(), want, i+1)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after half-close: %v, want io.EOF", err)
	}
}

func TestSayHelloChatInvalid(t *testing.T) {
	h := start(t)
	stream, err := h.greeter.SayHelloChat(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&greeterv1.SayHelloChatRequest{Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&greeterv1.SayHelloChatRequest{Name: "  "}); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	if got := badRequest(t, err); !slices.Contains(got, violation{"name", "name.not_blank"}) {
		t.Fatalf("violations %v", got)
	}
}

func TestSayHelloChatCancel(t *testing.T) {
	hook, returned := handlerReturns()
	h := start(t, withOptions(WithStreamInterceptors(hook)))
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := h.greeter.SayHelloChat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&greeterv1.SayHelloChatRequest{Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel() // the handler is blocked in Recv
	if got := status.Code(waitReturn(t, returned)); got != codes.Canceled {
		t.Errorf("handler returned %v, want Canceled", got)
	}
}

func TestManyConcurrentStreams(t *testing.T) {
	hook, returned := handlerReturns()
	// 200 response streams from one client are more than the default
	// memory limit admits at their worst case (about 1.4 MiB each, see
	// WithMaxRPCMemory): this test is about concurrency, so it plans for
	// 1 GiB.
	h := start(t, withOptions(WithStreamInterceptors(hook), WithMemoryLimit(1<<30)))
	const streams, count = 100, 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*streams)
	for i := range streams {
		wg.Go(func() {
			name := fmt.Sprintf("S%d", i)
			stream, err := h.greeter.SayHelloStream(t.Context(), &greeterv1.SayHelloStreamRequest{Name: name, Count: count})
			if err != nil {
				errs <- err
				return
			}
			var n int32
			for {
				resp, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					errs <- err
					return
				}
				n++
				if resp.GetSequence() != n || resp.GetMessage() != "Hello, "+name+"!" {
					errs <- fmt.Errorf("%s: got %q #%d", name, resp.GetMessage(), resp.GetSequence())
					return
				}
			}
			if n != count {
				errs <- fmt.Errorf("%s: %d greetings, want %d", name, n, count)
			}
		})
		wg.Go(func() {
			chat, err := h.greeter.SayHelloChat(t.Context())
			if err != nil {
				errs <- err
				return
			}
			for j := range 5 {
				if err := chat.Send(&greeterv1.SayHelloChatRequest{Name: "C"}); err != nil {
					errs <- err
					return
				}
				if resp, err := chat.Recv(); err != nil || resp.GetSequence() != int64(j+1) {
					errs <- fmt.Errorf("chat: %v, %v", resp, err)
					return
				}
			}
			_ = chat.CloseSend()
			if _, err := chat.Recv(); !errors.Is(err, io.EOF) {
				errs <- fmt.Errorf("chat end: %v", err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Every handler has returned: none is left behind.
	for range 2 * streams {
		if err := waitReturn(t, returned); err != nil {
			t.Errorf("handler returned %v", err)
		}
	}
}
