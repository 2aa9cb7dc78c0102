package admission

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
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
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// TestIdleCloseSaysGoAway: a gRPC port's connection closed to make room for
// a newcomer is sent a GOAWAY (NO_ERROR) naming the last stream it was
// answered on, then closed; a call that arrives on a connection already
// closing is refused UNAVAILABLE, never run.
func TestIdleCloseSaysGoAway(t *testing.T) {
	c, _ := newLimitedController(Limits{MaxConnections: 1})
	// The listener reads the clock from grpc-go's accepting goroutine.
	var skew atomic.Int64
	c.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	srv := grpc.NewServer(grpc.Creds(Credentials(insecure.NewCredentials())), grpc.InTapHandle(c.TapHandle),
		grpc.UnaryInterceptor(c.InterceptUnary), grpc.StreamInterceptor(c.InterceptStream))
	healthgrpc.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(c.Listener(lis))
	t.Cleanup(srv.Stop)

	// The first connection, a client at the frame level: one Check,
	// answered on stream 1, then idle.
	raw, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	fr := http2.NewFramer(raw, raw)
	if _, err := io.WriteString(raw, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hdr bytes.Buffer
	enc := hpack.NewEncoder(&hdr)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", healthgrpc.Health_Check_FullMethodName},
		{":authority", "greeter"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteData(1, true, grpcMessage(0)); err != nil {
		t.Fatal(err)
	}
	_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	for answered := false; !answered; {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("before the Check was answered: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			answered = f.StreamID == 1 && f.StreamEnded()
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY before the connection was idle: %v", f)
		}
	}
	waitFor(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for tc := range c.conns {
			return tc.calls == 0
		}
		return false
	})

	// A newcomer, once the first has been idle long enough, takes its
	// place: the first is told, then closed.
	skew.Store(int64(2 * minIdle))
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := healthgrpc.NewHealthClient(conn).Check(t.Context(), &healthgrpc.HealthCheckRequest{}); err != nil {
		t.Fatalf("the newcomer's Check: %v", err)
	}
	var goAway *http2.GoAwayFrame
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if goAway == nil {
				t.Fatalf("closed without a GOAWAY: %v", err)
			}
			break
		}
		if g, ok := f.(*http2.GoAwayFrame); ok && goAway == nil {
			goAway = g
		}
	}
	if goAway.LastStreamID != 1 || goAway.ErrCode != http2.ErrCodeNo {
		t.Errorf("GOAWAY last stream %d, %v; want 1, NO_ERROR", goAway.LastStreamID, goAway.ErrCode)
	}

	// A call arriving on a connection already closing is refused.
	c.mu.Lock()
	gone := &trackedConn{c: c, ip: "127.0.0.1", gone: true}
	c.mu.Unlock()
	gone.addr = &remoteAddr{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, text: "127.0.0.1:1", conn: gone}
	_, _, err = c.Admit(context.Background(), &peer.Peer{Addr: gone.addr}, "/acme.greeter.v1.GreeterService/SayHello")
	if status.Code(err) != codes.Unavailable {
		t.Errorf("a call on a connection closing: %v, want UNAVAILABLE", err)
	}
}

// TestGoAwayBetweenFrames: a GOAWAY is written only between two of
// grpc-go's frames and while it is not writing, waiting a moment for that;
// otherwise the connection is closed without one.
func TestGoAwayBetweenFrames(t *testing.T) {
	var frames bytes.Buffer
	fr := http2.NewFramer(&frames, nil)
	_ = fr.WriteData(3, true, grpcMessage(4))
	whole := frames.Bytes()
	for _, tc := range []struct {
		name    string
		written []byte
		busy    time.Duration // grpc-go writing for so long
		want    bool
	}{
		{"between frames", whole, 0, true},
		{"mid-frame", whole[:len(whole)-2], 0, false},
		{"mid-header", whole[:4], 0, false},
		{"grpc-go writing a moment", whole, 10 * time.Millisecond, true},
		{"grpc-go writing on", whole, 2 * goAwayWriteTimeout, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got bytes.Buffer
			w := &outboundConn{Conn: writeRecorder{&got}, out: &outbound{streams: map[uint32]*sendGate{}}}
			if _, err := w.Write(tc.written); err != nil {
				t.Fatal(err)
			}
			got.Reset()
			if tc.busy > 0 {
				w.mu.Lock()
				time.AfterFunc(tc.busy, w.mu.Unlock)
			}
			if wrote := w.goAway(); wrote != tc.want {
				t.Fatalf("goAway: %v, want %v", wrote, tc.want)
			}
			if !tc.want {
				if got.Len() != 0 {
					t.Errorf("wrote %d bytes, want none", got.Len())
				}
				return
			}
			f, err := http2.NewFramer(nil, &got).ReadFrame()
			g, ok := f.(*http2.GoAwayFrame)
			if err != nil || !ok || g.LastStreamID != 3 || g.ErrCode != http2.ErrCodeNo || got.Len() != 0 {
				t.Errorf("wrote %v (%v), %d bytes after it; want one GOAWAY, last stream 3, NO_ERROR", f, err, got.Len())
			}
		})
	}
}

// writeRecorder is a connection that records what is written to it.
type writeRecorder struct{ w *bytes.Buffer }

func (r writeRecorder) Write(p []byte) (int, error)    { return r.w.Write(p) }
func (writeRecorder) Read([]byte) (int, error)         { return 0, errors.New("not read") }
func (writeRecorder) Close() error                     { return nil }
func (writeRecorder) LocalAddr() net.Addr              { return nil }
func (writeRecorder) RemoteAddr() net.Addr             { return nil }
func (writeRecorder) SetDeadline(time.Time) error      { return nil }
func (writeRecorder) SetReadDeadline(time.Time) error  { return nil }
func (writeRecorder) SetWriteDeadline(time.Time) error { return nil }

// waitFor polls cond until it holds, failing the test after 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
