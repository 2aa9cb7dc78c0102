package attack

import (
	"context"
	"errors"
	"sync"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/test/harness/h2client"
)

// StuckReaders opens s.Streams() SayHelloStream calls, each asking for
// count one-letter greetings (the most messages per byte), on connections
// that grant the server a flow-control window of 0 and never read: every
// greeting the server sends queues on its side. Each connection opens its
// streams in a goroutine of its own, so that they open at once, as a burst
// does. Any failure to open is an error: the crowd is closed.
func StuckReaders(ctx context.Context, addr string, s Shape, count int32) (*Crowd, error) {
	body, err := proto.Marshal(&greeterv1.SayHelloStreamRequest{Name: "a", Count: count})
	if err != nil {
		return nil, err
	}
	msg := h2client.Message(body)
	crowd := &Crowd{}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	begin := time.Now()
	for a := range s.Addrs {
		for range s.ConnsPerAddr {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dctx, cancel := context.WithTimeout(ctx, dialTimeout)
				c, err := h2client.Dial(dctx, addr, h2client.WithLocalIP(s.IP(a)), h2client.WithInitialWindowSize(0))
				cancel()
				if err != nil {
					fail(err)
					return
				}
				crowd.add(c)
				for range s.StreamsPerConn {
					id, err := c.OpenStream(greeterv1.GreeterService_SayHelloStream_FullMethodName)
					if err == nil {
						err = c.WriteData(id, true, msg)
					}
					if err != nil {
						fail(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	crowd.Took = time.Since(begin)
	if err := errors.Join(errs...); err != nil {
		crowd.Close()
		return nil, err
	}
	crowd.Opened = s.Streams()
	return crowd, nil
}

// HeldStreams opens s.Streams() SayHelloStream calls that send their
// HEADERS and nothing else, and holds them: a crowd that never sends its
// requests. Connections are dialed one after another; one that fails is
// counted in DialsFailed, not an error (past its hard memory limit, the
// greeter accepts a new connection only in an idle one's place).
func HeldStreams(ctx context.Context, addr string, s Shape) (*Crowd, error) {
	crowd := &Crowd{}
	begin := time.Now()
	for a := range s.Addrs {
		for range s.ConnsPerAddr {
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			c, err := h2client.Dial(dctx, addr, h2client.WithLocalIP(s.IP(a)))
			cancel()
			if err != nil {
				crowd.DialsFailed++
				continue
			}
			crowd.add(c)
			for range s.StreamsPerConn {
				if _, err := c.OpenStream(greeterv1.GreeterService_SayHelloStream_FullMethodName); err != nil {
					crowd.Close()
					return nil, err
				}
				crowd.Opened++
			}
		}
	}
	crowd.Took = time.Since(begin)
	return crowd, nil
}

// HealthHolders opens a connection from each of addrs addresses (CrowdIP)
// and holds perMethod Health/Check and perMethod Health/Watch calls on it
// that send their HEADERS only: health calls whose request never comes.
func HealthHolders(ctx context.Context, addr string, addrs, perMethod int) (*Crowd, error) {
	crowd := &Crowd{}
	begin := time.Now()
	for a := range addrs {
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		c, err := h2client.Dial(dctx, addr, h2client.WithLocalIP(CrowdIP(a)))
		cancel()
		if err != nil {
			crowd.Close()
			return nil, err
		}
		crowd.add(c)
		for _, method := range []string{healthpb.Health_Check_FullMethodName, healthpb.Health_Watch_FullMethodName} {
			for range perMethod {
				if _, err := c.OpenStream(method); err != nil {
					crowd.Close()
					return nil, err
				}
				crowd.Opened++
			}
		}
	}
	crowd.Took = time.Since(begin)
	return crowd, nil
}

// IdleConns opens s.ConnsPerAddr connections from each of s.Addrs
// addresses, the addresses dialing at once, that complete the HTTP/2
// handshake and open no stream. A connection that fails is counted in
// DialsFailed.
func IdleConns(ctx context.Context, addr string, s Shape) *Crowd {
	crowd := &Crowd{}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed int
	)
	begin := time.Now()
	for a := range s.Addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range s.ConnsPerAddr {
				dctx, cancel := context.WithTimeout(ctx, dialTimeout)
				c, err := h2client.Dial(dctx, addr, h2client.WithLocalIP(s.IP(a)))
				cancel()
				if err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
					continue
				}
				crowd.add(c)
			}
		}()
	}
	wg.Wait()
	crowd.Took = time.Since(begin)
	crowd.DialsFailed = failed
	return crowd
}
