package admission

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/acme/greeter/services/greeter/internal/testconn"
)

// grpcMessage is a gRPC length-prefixed message of n bytes.
func grpcMessage(n int) []byte {
	b := make([]byte, 5+n)
	binary.BigEndian.PutUint32(b[1:], uint32(n))
	return b
}

// TestOutboundCountsMessages writes HTTP/2 frames as grpc-go would (and
// some it never does: padding, messages split across frames, frames of
// other streams between) and feeds them to an outbound in pieces of every
// size: each registered stream's whole messages are counted, no others.
func TestOutboundCountsMessages(t *testing.T) {
	var wire bytes.Buffer
	fr := http2.NewFramer(&wire, nil)
	var hdr bytes.Buffer
	enc := hpack.NewEncoder(&hdr)
	_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	_ = fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr.Bytes(), EndHeaders: true})
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hdr.Bytes(), EndHeaders: true})
	// Stream 1: an empty message and a 3-byte one in one frame.
	_ = fr.WriteData(1, false, append(grpcMessage(0), grpcMessage(3)...))
	// A 20,000-byte message in two frames, stream 3's between them.
	big := grpcMessage(20000)
	_ = fr.WriteData(1, false, big[:16384])
	_ = fr.WriteData(3, false, grpcMessage(10))
	_ = fr.WriteData(1, false, big[16384:])
	// A message whose prefix is split, in padded frames.
	small := grpcMessage(7)
	_ = fr.WriteDataPadded(1, false, small[:2], make([]byte, 9))
	_ = fr.WritePing(false, [8]byte{})
	_ = fr.WriteDataPadded(1, false, small[2:], make([]byte, 200))
	// Half a message: not written yet.
	_ = fr.WriteData(1, false, grpcMessage(100)[:50])
	_ = fr.WriteData(5, true, grpcMessage(1))
	frames := wire.Bytes()

	for _, piece := range []int{1, 2, 5, 9, 10, 100, 16393, len(frames)} {
		o := &outbound{streams: map[uint32]*sendGate{}}
		one, five := o.register(1), o.register(5)
		for p := frames; len(p) > 0; {
			n := min(piece, len(p))
			o.wrote(p[:n])
			p = p[n:]
		}
		if got := one.written.Load(); got != 4 {
			t.Errorf("in pieces of %d: stream 1 wrote %d messages, want 4", piece, got)
		}
		if got := five.written.Load(); got != 1 {
			t.Errorf("in pieces of %d: stream 5 wrote %d messages, want 1", piece, got)
		}
	}
}

// TestStreamIDOfEveryStream reads the stream ID grpc-go gave each stream
// of one connection: client streams are odd and rising. It fails if
// grpc-go moves what streamID reads.
func TestStreamIDOfEveryStream(t *testing.T) {
	var (
		mu  sync.Mutex
		ids []uint32
	)
	srv := grpc.NewServer(grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		id, ok := streamID(ss.Context())
		if !ok {
			return status.Error(codes.Internal, "no stream ID")
		}
		mu.Lock()
		ids = append(ids, id)
		mu.Unlock()
		return status.Error(codes.Unavailable, "done")
	}))
	healthgrpc.RegisterHealthServer(srv, health.NewServer())
	lis := testconn.Listen()
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := lis.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := healthgrpc.NewHealthClient(conn)
	for range 3 {
		w, err := client.Watch(t.Context(), &healthgrpc.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Recv(); status.Code(err) != codes.Unavailable {
			t.Fatalf("Watch: %v, want the interceptor's UNAVAILABLE", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 3 || ids[0]%2 != 1 || ids[1] != ids[0]+2 || ids[2] != ids[1]+2 {
		t.Errorf("stream IDs %v, want three odd ones rising by 2", ids)
	}
}

// TestSendGate: a stream's sends wait once MaxQueuedMessages are unwritten,
// resume as they are written, and end with the stream's context.
func TestSendGate(t *testing.T) {
	o := &outbound{streams: map[uint32]*sendGate{}}
	g := o.register(1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for range MaxQueuedMessages {
		if err := g.wait(ctx); err != nil {
			t.Fatal(err)
		}
		g.handed++
	}
	waited := make(chan error, 1)
	go func() { waited <- g.wait(ctx) }()
	select {
	case err := <-waited:
		t.Fatalf("send %d with none written: not held (%v)", MaxQueuedMessages+1, err)
	case <-time.After(50 * time.Millisecond):
	}
	var wire bytes.Buffer
	_ = http2.NewFramer(&wire, nil).WriteData(1, false, grpcMessage(1))
	o.wrote(wire.Bytes())
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a message written did not release the held send")
	}
	g.handed++
	go func() { waited <- g.wait(ctx) }()
	cancel()
	if err := <-waited; status.Code(err) != codes.Canceled {
		t.Errorf("held send, stream cancelled: %v, want CANCELED", err)
	}
}

// TestCredentialsWatchOnlyTrackedConns: a connection the Controller's
// listener did not accept is handed on as it is.
func TestCredentialsWatchOnlyTrackedConns(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	conn, _, err := Credentials(insecure.NewCredentials()).ServerHandshake(a)
	if err != nil || conn != a {
		t.Errorf("ServerHandshake of an untracked conn: %v, %v; want it unchanged", conn, err)
	}
}
