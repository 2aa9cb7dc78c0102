package server

import (
	"bytes"
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/services/greeter/internal/admission"
)

// countSends counts the messages a streaming handler's sends returned
// from: what grpc-go took into its queue.
func countSends(n *atomic.Int64) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &sendCounter{ServerStream: ss, n: n})
	}
}

type sendCounter struct {
	grpc.ServerStream
	n *atomic.Int64
}

func (s *sendCounter) SendMsg(m any) error {
	err := s.ServerStream.SendMsg(m)
	if err == nil {
		s.n.Add(1)
	}
	return err
}

// TestStuckReaderQueuesLittle opens a SayHelloStream of 1,000 greetings on
// a connection that grants the server a flow-control window of 0: the
// handler queues at most admission.MaxQueuedMessages of them (grpc-go's
// own bound, 64 KiB of message bytes, took them all), and once the client
// opens its window, every greeting and the OK status arrive.
func TestStuckReaderQueuesLittle(t *testing.T) {
	var sent atomic.Int64
	h := start(t, withOptions(WithStreamInterceptors(countSends(&sent))))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := h.lis.DialContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	body, err := proto.Marshal(&greeterv1.SayHelloStreamRequest{Name: "a", Count: 1000})
	if err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":authority", "bufnet"},
		{":path", "/acme.greeter.v1.GreeterService/SayHelloStream"},
		{"content-type", "application/grpc"}, {"te", "trailers"},
	} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteData(1, true, grpcFrame(0, uint32(len(body)), body)); err != nil {
		t.Fatal(err)
	}

	// The reader runs throughout, as a client's would; the window stays 0.
	var (
		dataBytes atomic.Int64
		status    = make(chan string, 1)
	)
	go readStream(fr, &dataBytes, status)

	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) && sent.Load() < 1000 {
		time.Sleep(10 * time.Millisecond)
	}
	if got := sent.Load(); got > admission.MaxQueuedMessages {
		t.Fatalf("a client granting no window: %d greetings queued for it, want at most %d", got, admission.MaxQueuedMessages)
	} else if got == 0 {
		t.Fatal("no greeting queued at all")
	}
	if err := fr.WriteWindowUpdate(0, 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteWindowUpdate(1, 1<<30); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-status:
		if st != "0" {
			t.Fatalf("grpc-status %q once the window opened, want 0", st)
		}
	case <-ctx.Done():
		t.Fatalf("the stream did not end once the window opened: %d greetings sent, %d bytes of DATA read", sent.Load(), dataBytes.Load())
	}
	// A greeting is at least its 5-byte prefix and "Hello, a".
	if got := dataBytes.Load(); got < 1000*(5+8) || sent.Load() != 1000 {
		t.Errorf("%d greetings sent, %d bytes of DATA read; want 1000 greetings", sent.Load(), got)
	}
}

// readStream reads frames until stream 1's trailers, counting its DATA
// bytes and sending its grpc-status.
func readStream(fr *http2.Framer, dataBytes *atomic.Int64, status chan<- string) {
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			status <- "read: " + err.Error()
			return
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			dataBytes.Add(int64(len(f.Data())))
		case *http2.MetaHeadersFrame:
			if f.StreamEnded() {
				status <- grpcStatus(f)
				return
			}
		}
	}
}

func grpcStatus(f *http2.MetaHeadersFrame) string {
	for _, hf := range f.Fields {
		if hf.Name == "grpc-status" {
			return hf.Value
		}
	}
	return "none"
}
