package admission_test

import (
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/acme/greeter/services/greeter/internal/admission"
	"github.com/acme/greeter/services/greeter/internal/metrics"
)

// TestListenerConnections: an accepted connection reports its client's
// address (formatted once, the same Addr every time, as grpc-go's peer),
// each open connection is counted once, and closing one, twice even,
// uncounts it once.
func TestListenerConnections(t *testing.T) {
	m, err := metrics.New()
	if err != nil {
		t.Fatal(err)
	}
	c := admission.New(admission.Limits{}, m.Overload, nil, nil)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis := c.Listener(tcp)
	t.Cleanup(func() { lis.Close() })

	var accepted []net.Conn
	for range 2 {
		client, err := net.Dial("tcp", tcp.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		conn, err := lis.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		accepted = append(accepted, conn)
		addr := conn.RemoteAddr()
		if addr.String() != client.LocalAddr().String() || addr.Network() != "tcp" {
			t.Errorf("RemoteAddr %s %q, want tcp %q", addr.Network(), addr, client.LocalAddr())
		}
		if conn.RemoteAddr() != addr {
			t.Error("RemoteAddr is a new Addr on each call")
		}
	}
	if got := testutil.ToFloat64(m.Overload.Connections); got != 2 {
		t.Errorf("%v connections counted, want 2", got)
	}
	accepted[0].Close()
	accepted[0].Close()
	if got := testutil.ToFloat64(m.Overload.Connections); got != 1 {
		t.Errorf("%v connections counted after closing one, want 1", got)
	}
}
