package reliability_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
)

// rawCodec sends pre-encoded protobuf bytes, so the client's marshalling
// (race-instrumented in `make test`) is not what is timed.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// TestMillionNames streams 1,000,000 one-letter names to the real binary's
// SayHelloToAll: the reply counts them all, within a time bound, and the
// server's RSS grows by less than 32 MiB (a million kept names would be
// well over that; what grows is buffered input, bounded by flow control).
func TestMillionNames(t *testing.T) {
	const (
		names     = 1_000_000
		maxGrowth = 32 << 20
	)
	srv := startQuiet(t)
	conn := dialPlain(t, srv.Addr)
	baseRSS := rss(t, srv.Pid())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, "/acme.greeter.v1.GreeterService/SayHelloToAll", grpc.ForceCodec(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := proto.Marshal(&greeterv1.SayHelloToAllRequest{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	var peak int64
	start := time.Now()
	for i := range names {
		if err := stream.SendMsg(&msg); err != nil {
			t.Fatal(err)
		}
		if i%50_000 == 0 {
			peak = max(peak, rss(t, srv.Pid()))
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := stream.RecvMsg(&raw); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	peak = max(peak, rss(t, srv.Pid()))
	var resp greeterv1.SayHelloToAllResponse
	if err := proto.Unmarshal(raw, &resp); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("Hello, x, x, x, x, x, x, x, x, x, x and %d others!", names-10); resp.GetCount() != names || resp.GetMessage() != want {
		t.Fatalf("reply %q (%d), want %q (%d)", resp.GetMessage(), resp.GetCount(), want, names)
	}
	t.Logf("1,000,000 names in %s (%.0f/s); server RSS %d MiB before, peak %d MiB (+%d MiB)",
		elapsed.Round(time.Millisecond), names/elapsed.Seconds(), baseRSS>>20, peak>>20, (peak-baseRSS)>>20)
	if peak-baseRSS > maxGrowth {
		t.Errorf("server RSS grew by %d MiB, want < %d MiB", (peak-baseRSS)>>20, maxGrowth>>20)
	}
	if elapsed > time.Minute {
		t.Errorf("took %s, want under a minute", elapsed)
	}
}
