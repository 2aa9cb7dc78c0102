package attack

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"connectrpc.com/connect"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
)

// Calls is what a well-behaved client's calls met: how long each took,
// sorted, and the errors of those that failed.
type Calls struct {
	Took []time.Duration
	Errs []error
}

// N counts the calls made.
func (c Calls) N() int { return len(c.Took) }

// OK counts the calls that succeeded.
func (c Calls) OK() int { return len(c.Took) - len(c.Errs) }

// Slowest is the longest a call took.
func (c Calls) Slowest() time.Duration {
	if len(c.Took) == 0 {
		return 0
	}
	return c.Took[len(c.Took)-1]
}

// P99 is the 99th percentile of the calls' times, failed ones included.
func (c Calls) P99() time.Duration {
	if len(c.Took) == 0 {
		return 0
	}
	return c.Took[len(c.Took)*99/100]
}

func (c Calls) String() string {
	return fmt.Sprintf("%d calls, %d failed, p99 %s, slowest %s", c.N(), len(c.Errs), c.P99().Round(time.Millisecond), c.Slowest().Round(time.Millisecond))
}

// Polite is a well-behaved gRPC client at ip: it calls SayHello, waiting
// 20 ms after each call, each within 5 s, until stop is closed. The
// function it returns waits for the last call and reports them all.
func Polite(ip, addr string, stop <-chan struct{}) (func() Calls, error) {
	conn, err := DialFrom(ip, addr)
	if err != nil {
		return nil, err
	}
	client := greeterv1.NewGreeterServiceClient(conn)
	return every(20*time.Millisecond, stop, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := client.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "Ada"})
		return err
	}, func() { conn.Close() }), nil
}

// PoliteConnect is a well-behaved Connect client at ip of the HTTP port
// httpAddr: it calls SayHello (JSON, HTTP/1.1, a new connection each, as
// a browser behind no pool would), waiting 100 ms after each call, each
// within 2 s, until stop is closed.
func PoliteConnect(ip, httpAddr string, stop <-chan struct{}) func() Calls {
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext, DisableKeepAlives: true}
	client := connect.NewClient[greeterv1.SayHelloRequest, greeterv1.SayHelloResponse](&http.Client{Transport: tr, Timeout: 2 * time.Second},
		"http://"+httpAddr+greeterv1.GreeterService_SayHello_FullMethodName, connect.WithProtoJSON())
	return every(100*time.Millisecond, stop, func() error {
		_, err := client.CallUnary(context.Background(), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "Ada"}))
		return err
	}, tr.CloseIdleConnections)
}

// every makes call, pausing pause after each, until stop is closed, then
// runs done; the function it returns waits for that and reports the calls.
func every(pause time.Duration, stop <-chan struct{}, call func() error, done func()) func() Calls {
	var out Calls
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		defer done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(pause):
			}
			begin := time.Now()
			err := call()
			out.Took = append(out.Took, time.Since(begin))
			if err != nil {
				out.Errs = append(out.Errs, err)
			}
		}
	}()
	return func() Calls {
		<-finished
		slices.Sort(out.Took)
		return out
	}
}
