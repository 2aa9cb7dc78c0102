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

// TestStuckReaderQueuesLittle opens 100 SayHelloStream calls of 2,000
// greetings on a connection that grants the server a flow-control window of
// 0: their handlers queue at most admission.QueuedPerStream greetings each,
// and admission.QueuedShared more in all (grpc-go's own bound, 64 KiB of
// message bytes a stream, took all 200,000); once the client opens its
// windows, every greeting and every OK status arrive.
func TestStuckReaderQueuesLittle(t *testing.T) {
	const streams, count = 100, 2000
	var sent atomic.Int64
	h := start(t, withOptions(WithStreamInterceptors(countSends(&sent))))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	conn, err := h.lis.DialContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	body, err := proto.Marshal(&greeterv1.SayHelloStreamRequest{Name: "a", Count: count})
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
	for i := range streams {
		id := uint32(2*i + 1)
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		if err := fr.WriteData(id, true, grpcFrame(0, uint32(len(body)), body)); err != nil {
			t.Fatal(err)
		}
	}

	// The reader runs throughout, as a client's would; the windows stay 0.
	var dataBytes atomic.Int64
	statuses := make(chan string, streams)
	go readStreams(fr, &dataBytes, statuses)

	// Until the sends stop growing.
	for last := int64(-1); sent.Load() != last; {
		last = sent.Load()
		time.Sleep(100 * time.Millisecond)
	}
	// grpc-go may write a few streams whole before it applies the window
	// of 0 to them: their greetings are not queued.
	done := len(statuses)
	queued := sent.Load() - int64(done*count)
	if bound := int64(streams*admission.QueuedPerStream + admission.QueuedShared); queued > bound {
		t.Fatalf("%d streams to a client granting no window: %d greetings queued, want at most %d", streams, queued, bound)
	}
	t.Logf("%d streams to a client granting no window: %d greetings queued (%d streams written whole first)", streams, queued, done)
	if err := fr.WriteWindowUpdate(0, 1<<30); err != nil {
		t.Fatal(err)
	}
	for i := range streams {
		if err := fr.WriteWindowUpdate(uint32(2*i+1), 1<<30); err != nil {
			t.Fatal(err)
		}
	}
	for range streams {
		select {
		case st := <-statuses:
			if st != "0" {
				t.Fatalf("grpc-status %q once the windows opened, want 0", st)
			}
		case <-ctx.Done():
			t.Fatalf("the streams did not end once the windows opened: %d greetings sent, %d bytes of DATA read", sent.Load(), dataBytes.Load())
		}
	}
	// A greeting is at least its 5-byte prefix and "Hello, a".
	if got := dataBytes.Load(); got < streams*count*(5+8) || sent.Load() != streams*count {
		t.Errorf("%d greetings sent, %d bytes of DATA read; want %d greetings", sent.Load(), got, streams*count)
	}
}

// readStreams reads frames until the connection ends, counting the DATA
// bytes and sending each stream's grpc-status.
func readStreams(fr *http2.Framer, dataBytes *atomic.Int64, statuses chan<- string) {
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			dataBytes.Add(int64(len(f.Data())))
		case *http2.MetaHeadersFrame:
			if f.StreamEnded() {
				statuses <- grpcStatus(f)
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
