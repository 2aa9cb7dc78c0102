package server

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
)

// TestGzip: the gRPC port takes gzip-compressed requests (connectrpc's
// conformance suite sends them; grpc-go answers UNIMPLEMENTED to an
// encoding it has not registered), and holds what a request decompresses to
// to the message size limit. The client is connect-go's, whose gzip is its
// own: grpc-go's registry holds only what the server registered.
func TestGzip(t *testing.T) {
	h := start(t)
	tr := &http.Transport{
		Protocols:   new(http.Protocols),
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return h.lis.DialContext(ctx) },
	}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	client := connect.NewClient[greeterv1.SayHelloRequest, greeterv1.SayHelloResponse](
		&http.Client{Transport: tr}, "http://bufconn"+sayHello, connect.WithGRPC(), connect.WithSendGzip())
	ctx := context.Background()

	res, err := client.CallUnary(ctx, connect.NewRequest(&greeterv1.SayHelloRequest{Name: "Ada"}))
	if err != nil {
		t.Fatalf("SayHello with gzip: %v", err)
	}
	if got := res.Msg.GetMessage(); got != "Hello, Ada!" {
		t.Errorf("SayHello = %q", got)
	}

	// A few hundred bytes on the wire, more than the limit once inflated.
	bomb := strings.Repeat("a", 2*DefaultMaxRecvMsgSize)
	_, err = client.CallUnary(ctx, connect.NewRequest(&greeterv1.SayHelloRequest{Name: bomb}))
	if code := connect.CodeOf(err); code != connect.CodeResourceExhausted {
		t.Errorf("a request inflating past the limit: %v, want ResourceExhausted", err)
	}
}
