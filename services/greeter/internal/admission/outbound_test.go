package admission

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
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
		var shared atomic.Int64
		o := &outbound{streams: map[uint32]*sendGate{}, shared: &shared}
		one, five := o.register(1), o.register(5)
		for range 5 {
			one.handed()
		}
		five.handed()
		for p := frames; len(p) > 0; {
			n := min(piece, len(p))
			o.wrote(p[:n])
			p = p[n:]
		}
		if got := one.unwritten.Load(); got != 1 {
			t.Errorf("in pieces of %d: stream 1 has %d of 5 messages unwritten, want 1", piece, got)
		}
		if got := five.unwritten.Load(); got != 0 {
			t.Errorf("in pieces of %d: stream 5 has %d of 1 unwritten, want 0", piece, got)
		}
		if got := shared.Load(); got != 1 {
			t.Errorf("in pieces of %d: %d unwritten in all, want 1", piece, got)
		}
		// Stream 5's trailers end it; stream 1's unwritten message stays
		// counted until it is reset.
		var end bytes.Buffer
		efr := http2.NewFramer(&end, nil)
		_ = efr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: hdr.Bytes(), EndHeaders: true, EndStream: true})
		o.wrote(end.Bytes())
		if got := shared.Load(); got != 1 || o.gates.Load() != 1 {
			t.Errorf("in pieces of %d: stream 5's trailers written: %d unwritten in all, %d streams counted; want 1 and 1", piece, got, o.gates.Load())
		}
		end.Reset()
		_ = efr.WriteRSTStream(1, http2.ErrCodeCancel)
		o.wrote(end.Bytes())
		if got := shared.Load(); got != 0 || o.gates.Load() != 0 {
			t.Errorf("in pieces of %d: stream 1 reset: %d unwritten in all, %d streams counted; want 0 and 0", piece, got, o.gates.Load())
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

// TestSendGate: past QueuedPerStream unwritten, a stream's sends go on while
// all streams' together are fewer than QueuedShared, else wait; they
// resume as the stream's own messages are written, and end with the
// stream's context.
func TestSendGate(t *testing.T) {
	var shared atomic.Int64
	o := &outbound{streams: map[uint32]*sendGate{}, shared: &shared}
	g := o.register(1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for range 2 * QueuedPerStream {
		if err := g.wait(ctx); err != nil {
			t.Fatal(err)
		}
		g.handed()
	}
	shared.Add(QueuedShared) // the other streams'
	for range QueuedPerStream {
		var wire bytes.Buffer
		_ = http2.NewFramer(&wire, nil).WriteData(1, false, grpcMessage(1))
		o.wrote(wire.Bytes())
	}
	waited := make(chan error, 1)
	go func() { waited <- g.wait(ctx) }()
	select {
	case err := <-waited:
		t.Fatalf("%d unwritten, the shared count full: send not held (%v)", g.unwritten.Load(), err)
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
	g.handed()
	go func() { waited <- g.wait(ctx) }()
	cancel()
	if err := <-waited; status.Code(err) != codes.Canceled {
		t.Errorf("held send, stream cancelled: %v, want CANCELED", err)
	}
}

// TestStreamEnds: a stream's unwritten messages stay counted when its
// handler returns (grpc-go writes them before its trailers), but not when
// grpc-go cancelled the stream (it dropped them) or the connection closed.
func TestStreamEnds(t *testing.T) {
	var shared atomic.Int64
	o := &outbound{streams: map[uint32]*sendGate{}, shared: &shared}
	for id := uint32(1); id <= 5; id += 2 {
		o.register(id).handed()
	}
	o.handlerReturned(t.Context(), 1)
	deadline, cancel := context.WithTimeout(t.Context(), 0)
	defer cancel()
	o.handlerReturned(deadline, 3)
	if got := shared.Load(); got != 3 {
		t.Errorf("handlers returned, one past its deadline: %d unwritten in all, want 3", got)
	}
	reset, cancelReset := context.WithCancel(t.Context())
	cancelReset()
	o.handlerReturned(reset, 5)
	if got := shared.Load(); got != 2 {
		t.Errorf("stream reset: %d unwritten in all, want 2", got)
	}
	o.closed()
	if got := shared.Load(); got != 0 || o.gates.Load() != 0 {
		t.Errorf("connection closed: %d unwritten in all, %d streams counted; want 0 and 0", got, o.gates.Load())
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
