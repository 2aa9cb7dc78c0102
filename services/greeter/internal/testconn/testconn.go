// Package testconn connects tests to an in-process gRPC server over an
// in-memory connection (bufconn): no port, no loopback socket.
package testconn

import (
	"context"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// Listener is an in-memory listener for a server to Serve on.
type Listener struct{ *bufconn.Listener }

// Listen returns a Listener with a 1 MiB buffer per connection.
func Listen() Listener { return Listener{bufconn.Listen(1 << 20)} }

// NewClient returns a client connection to l. It is insecure unless opts
// give transport credentials of their own (later options win).
func (l Listener) NewClient(opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///bufnet", append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, opts...)...)
}
