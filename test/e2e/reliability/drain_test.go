package reliability_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/test/harness/metrics"
)

// rpcResult is one RPC as the client saw it.
type rpcResult struct {
	stream     bool
	start, end time.Time
	code       codes.Code
	received   int // greetings, for streams
}

// accessLog counts the server's "finished call" lines by method and code.
func accessLog(t *testing.T, log string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil || line["msg"] != "finished call" {
			continue
		}
		counts[line["grpc.method"].(string)+"/"+line["grpc.code"].(string)]++
	}
	return counts
}

func dialPlain(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestDrainUnderLoad keeps 200 unary workers and 40 server streams busy,
// sends SIGTERM (with --drain-delay 1s) and checks that nothing is lost:
// every RPC the server accepted completed OK on both sides (client
// successes = the server's access-log lines, all OK), every failure is
// UNAVAILABLE with no reply at all (refused, never half-done), the health
// watcher saw NOT_SERVING before the listener closed, streams in flight at
// the close ran to their end, and the process exited 0.
func TestDrainUnderLoad(t *testing.T) {
	const (
		unaryWorkers  = 200
		streamWorkers = 40
		streamCount   = 40 // greetings per stream,
		streamGap     = 50 * time.Millisecond
		drainDelay    = time.Second
		warmup        = 1500 * time.Millisecond
	)
	srv := startGreeter(t, "--metrics-addr", "127.0.0.1:0", "--log-format", "json",
		"--drain-delay", drainDelay.String(), "--drain-timeout", "20s")

	// Health watcher, on its own connection.
	type healthEvent struct {
		at     time.Time
		status healthpb.HealthCheckResponse_ServingStatus
	}
	var (
		healthMu sync.Mutex
		health   []healthEvent
	)
	watchDone := make(chan struct{})
	healthClient := healthpb.NewHealthClient(dialPlain(t, srv.Addr))
	go func() {
		defer close(watchDone)
		w, err := healthClient.Watch(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil {
			return
		}
		for {
			resp, err := w.Recv()
			if err != nil {
				return
			}
			healthMu.Lock()
			health = append(health, healthEvent{time.Now(), resp.GetStatus()})
			healthMu.Unlock()
		}
	}()

	conns := make([]greeterv1.GreeterServiceClient, 4)
	for i := range conns {
		conns[i] = greeterv1.NewGreeterServiceClient(dialPlain(t, srv.Addr))
	}
	var (
		stop    atomic.Bool
		mu      sync.Mutex
		results []rpcResult
		wg      sync.WaitGroup
	)
	record := func(r rpcResult) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
		if r.code != codes.OK {
			time.Sleep(10 * time.Millisecond) // no busy loop once refused
		}
	}
	for i := range unaryWorkers {
		wg.Go(func() {
			c := conns[i%len(conns)]
			for !stop.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				r := rpcResult{start: time.Now()}
				_, err := c.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "Ada"})
				cancel()
				r.end, r.code = time.Now(), status.Code(err)
				record(r)
			}
		})
	}
	for i := range streamWorkers {
		wg.Go(func() {
			c := conns[i%len(conns)]
			for !stop.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				r := rpcResult{stream: true, start: time.Now()}
				s, err := c.SayHelloStream(ctx, &greeterv1.SayHelloStreamRequest{Name: "Ada", Count: streamCount, Interval: durationMS(streamGap)})
				for err == nil {
					if _, err = s.Recv(); err == nil {
						r.received++
					}
				}
				cancel()
				if errors.Is(err, io.EOF) {
					err = nil
					if r.received != streamCount {
						err = status.Errorf(codes.DataLoss, "stream ended OK after %d of %d", r.received, streamCount)
					}
				}
				r.end, r.code = time.Now(), status.Code(err)
				record(r)
			}
		})
	}

	// Scrape /metrics until the process exits; keep the last scrape.
	var last metrics.Snapshot
	scrapeDone := make(chan struct{})
	go func() {
		defer close(scrapeDone)
		for {
			select {
			case <-srv.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			if m, err := metrics.Scrape(context.Background(), srv.MetricsAddr); err == nil {
				last = m
			}
		}
	}()

	time.Sleep(warmup)
	sigterm := time.Now()
	if err := srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The listener closes when a dial is first refused.
	var closed time.Time
	for closed.IsZero() && time.Since(sigterm) < 30*time.Second {
		c, err := net.DialTimeout("tcp", srv.Addr, time.Second)
		if err != nil {
			closed = time.Now()
			break
		}
		c.Close()
		time.Sleep(2 * time.Millisecond)
	}
	code, err := srv.Wait(30 * time.Second)
	exited := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a few refusals after the exit too
	stop.Store(true)
	wg.Wait()
	<-scrapeDone
	<-watchDone

	// Process and health.
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	healthMu.Lock()
	var notServing time.Time
	for _, e := range health {
		if e.status == healthpb.HealthCheckResponse_NOT_SERVING && notServing.IsZero() {
			notServing = e.at
		}
	}
	healthMu.Unlock()
	if notServing.IsZero() || closed.IsZero() || !notServing.Before(closed) {
		t.Errorf("health watch NOT_SERVING at %v, listener closed at %v: want NOT_SERVING first", notServing, closed)
	}

	// Client side.
	var (
		okUnary, okStream, refusedBefore, refusedAfter, inFlightAtClose int
		lost                                                            []rpcResult
	)
	for _, r := range results {
		switch {
		case r.code == codes.OK:
			if r.stream {
				okStream++
				if r.start.Before(closed) && r.end.After(closed) {
					inFlightAtClose++
				}
			} else {
				okUnary++
			}
		case r.code == codes.Unavailable && r.received == 0:
			if r.start.Before(closed) {
				refusedBefore++
			} else {
				refusedAfter++
			}
		default:
			lost = append(lost, r)
		}
	}
	// Server side.
	counts := accessLog(t, srv.Log())
	serverUnaryOK, serverStreamOK := counts["SayHello/OK"], counts["SayHelloStream/OK"]
	serverOther := 0
	for k, n := range counts {
		if !strings.HasSuffix(k, "/OK") {
			serverOther += n
			t.Errorf("server finished %d calls %s", n, k)
		}
	}
	t.Logf("SIGTERM → NOT_SERVING %s, → listener closed %s, → exit %s (code %d)",
		notServing.Sub(sigterm).Round(time.Millisecond), closed.Sub(sigterm).Round(time.Millisecond), exited.Sub(sigterm).Round(time.Millisecond), code)
	t.Logf("client: %d unary OK, %d streams OK (%d in flight when the listener closed), %d refused before the close, %d after, %d lost",
		okUnary, okStream, inFlightAtClose, refusedBefore, refusedAfter, len(lost))
	t.Logf("server access log: %d SayHello OK, %d SayHelloStream OK, %d other; last /metrics scrape before exit: %v SayHello OK, %v SayHelloStream OK",
		serverUnaryOK, serverStreamOK, serverOther,
		last.Sum("grpc_server_handled_total", map[string]string{"grpc_method": "SayHello", "grpc_code": "OK", "grpc_service": "acme.greeter.v1.GreeterService"}),
		last.Sum("grpc_server_handled_total", map[string]string{"grpc_method": "SayHelloStream", "grpc_code": "OK"}))
	for i, r := range lost {
		if i == 10 {
			break
		}
		t.Errorf("lost: stream=%v started %s after SIGTERM, %v after %d greetings", r.stream, r.start.Sub(sigterm), r.code, r.received)
	}
	if len(lost) > 0 {
		t.Errorf("%d RPCs lost (failed other than refused)", len(lost))
	}
	if okUnary != serverUnaryOK || okStream != serverStreamOK {
		t.Errorf("client saw %d unary + %d stream successes, server completed %d + %d: an accepted RPC was lost or double-counted",
			okUnary, okStream, serverUnaryOK, serverStreamOK)
	}
	if m := last.Sum("grpc_server_handled_total", map[string]string{"grpc_method": "SayHello", "grpc_code": "OK", "grpc_service": "acme.greeter.v1.GreeterService"}); int(m) > serverUnaryOK {
		t.Errorf("/metrics counted %v SayHello OK, more than the access log's %d", m, serverUnaryOK)
	}
	if inFlightAtClose == 0 {
		t.Error("no stream was in flight when the listener closed: the drain was not exercised")
	}
	if refusedAfter == 0 {
		t.Error("no RPC was refused after the listener closed: the test did not reach past the drain")
	}
	if okUnary < 1000 {
		t.Errorf("only %d unary successes: the load was too light", okUnary)
	}
}
