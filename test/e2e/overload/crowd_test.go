package overload_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/net/http2"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/test/harness/attack"
	"github.com/acme/greeter/test/harness/h2client"
	"github.com/acme/greeter/test/harness/process"
)

// TestIdleCrowd: connections that complete the HTTP/2 handshake and open no
// stream, from one address past --max-connections-per-client and from many
// up to --max-connections, never shut the door. A newcomer takes the place of
// the connection idle longest (at its address's limit, of its own address;
// at the server's, of the address holding the most), or finds the room that
// the idle timeout, a second at the cap, made; the count never passes the
// limit; a well-behaved client, established or new, and health probes on
// fresh connections are served throughout.
func TestIdleCrowd(t *testing.T) {
	srv := start(t)
	polite := greeterv1.NewGreeterServiceClient(dialFrom(t, attack.WellBehavedIP, srv.Addr))
	if _, err := polite.SayHello(context.Background(), &greeterv1.SayHelloRequest{Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	m := scrape(t, srv)
	maxConns := int(m.Sum("greeter_limit", map[string]string{"limit": "max-connections"}))
	perClient := int(m.Sum("greeter_limit", map[string]string{"limit": "max-connections-per-client"}))
	if maxConns == 0 || perClient == 0 {
		t.Fatalf("limits max-connections %d, per client %d", maxConns, perClient)
	}
	var opened []*h2client.Conn
	open := func(ip string, n int) (ok, refused int) {
		for range n {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err := h2client.Dial(ctx, srv.Addr, h2client.WithLocalIP(ip))
			cancel()
			if err != nil {
				refused++
				continue
			}
			t.Cleanup(func() { c.Close() })
			opened = append(opened, c)
			ok++
		}
		return ok, refused
	}
	byLimit := func(metric, limit string) float64 {
		return scrape(t, srv).Sum(metric, map[string]string{"limit": limit})
	}

	// One address past its limit: each extra connection takes the place
	// of one of its own idle a second or more, or, none being idle that
	// long yet, is refused.
	_, refused := open(attack.AttackerIP, perClient+20)
	evictedOwn := byLimit("greeter_connections_evicted_total", "max-connections-per-client")
	if refusedOwn := byLimit("greeter_connections_refused_total", "max-connections-per-client"); evictedOwn+refusedOwn != 20 || float64(refused) != refusedOwn {
		t.Errorf("one address, %d past its limit: %v evicted and %v refused (%d dials failed); want 20 in all", 20, evictedOwn, refusedOwn, refused)
	}

	// Fill the server from other addresses, then let every connection idle.
	total := int(scrape(t, srv).Sum("greeter_connections", nil))
	for i := 10; total < maxConns; i++ {
		ok, _ := open(fmt.Sprintf("127.0.0.%d", i), min(perClient, maxConns-total))
		total += ok
	}
	time.Sleep(1500 * time.Millisecond)

	// Newcomers are served: a new address's connections, a fresh client,
	// probes on fresh connections a second apart.
	if ok, refused := open("127.0.0.99", 10); ok != 10 || refused != 0 {
		t.Errorf("server full of idle connections: %d new connections served, %d refused; want 10 and 0", ok, refused)
	}
	for i := range 3 {
		if i > 0 {
			time.Sleep(time.Second)
		}
		// Each probe's connection stays open, so that each takes a
		// place of its own.
		ctx, cancel := context.WithTimeout(context.Background(), wellBehavedBound)
		resp, err := healthpb.NewHealthClient(dialFrom(t, attack.WellBehavedIP, srv.Addr)).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("probe %d on a fresh connection, server full of idle connections: %v, %v", i+1, resp, err)
		}
	}
	begin := time.Now()
	if _, err := polite.SayHello(context.Background(), &greeterv1.SayHelloRequest{Name: "Ada"}); err != nil {
		t.Errorf("the established well-behaved client: %v", err)
	}
	if took := time.Since(begin); took > wellBehavedBound {
		t.Errorf("SayHello on the established connection took %s", took)
	}
	m = scrape(t, srv)
	if got := int(m.Sum("greeter_connections", nil)); got > maxConns {
		t.Errorf("greeter_connections = %d, over the limit %d", got, maxConns)
	}
	evicted := m.Sum("greeter_connections_evicted_total", map[string]string{"limit": "max-connections"})
	idled := m.Sum("greeter_connections_evicted_total", map[string]string{"limit": "idle-timeout"})
	if evicted+idled < 13 {
		t.Errorf("evicted at max-connections %v, closed idle %v: want at least 13 in all (10 connections, 3 probes)", evicted, idled)
	}
	// Every connection closed to make room, or idle, was told first.
	closed, told := 0, 0
	for _, c := range opened {
		if c.Closed() {
			closed++
			if g := c.GoAway(); g != nil && g.ErrCode == http2.ErrCodeNo {
				told++
			}
		}
	}
	if closed == 0 || told != closed {
		t.Errorf("%d of the connections the server closed got a GOAWAY (NO_ERROR) first, of %d; want all, and some closed", told, closed)
	}
	t.Logf("limits: %d connections, %d per client; one address past its own: %v evicted, %d refused; server full: %v evicted for newcomers, %v closed idle; %d closed, %d of them with a GOAWAY",
		maxConns, perClient, evictedOwn, refused, evicted, idled, closed, told)
}

// TestHealthCrowd: health calls held open with their headers only, Check and
// Watch, 8 per address (the per-client limit) from 10 addresses each, more
// than --max-health-streams admits of either, never fail a probe: a probe
// takes the place of a held call whose request never came, from the client
// holding the most, and the crowd's calls are ended and counted.
func TestHealthCrowd(t *testing.T) {
	srv := start(t)
	ctx := context.Background()
	crowd, err := attack.HealthHolders(ctx, srv.Addr, 10, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(crowd.Close)
	failed := 0
	for i := range 10 {
		if i > 0 {
			time.Sleep(300 * time.Millisecond)
		}
		if err := attack.Probe(ctx, attack.ProbeIP, srv.Addr); err != nil {
			failed++
			t.Logf("probe %d: %v", i+1, err)
		}
	}
	if failed > 0 {
		t.Errorf("%d of 10 probes on fresh connections failed while a crowd held health calls", failed)
	}
	m := scrape(t, srv)
	if got := m.Sum("greeter_streams_reaped_total", map[string]string{"limit": "max-health-streams"}); got < 10 {
		t.Errorf("held health calls ended for the probes: %v, want at least 10", got)
	}
}

// TestHTTPHolders: 50 addresses × 20 HTTP/1.1 client-streaming calls
// (SayHelloToAll, a chunked body that never comes), more than
// --max-connections (set to 512: the 2,048 of the default would need 2,500
// holders, past the waiting budget, which would answer some of them
// instead): while they hold every connection, Connect calls from
// another address are served (a newcomer takes the place of a connection
// whose every call has waited a second or more for its request), and once
// the first-message timeout has passed, none is held.
func TestHTTPHolders(t *testing.T) {
	// All three ports picked together: picked apart, two may be the same.
	addrs, err := process.FreeAddrs(3)
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := addrs[2]
	srv := start(t, "--grpc-addr", addrs[0], "--metrics-addr", addrs[1], "--http-addr", httpAddr, "--max-connections", "512")
	holders := attack.HoldHTTP(context.Background(), httpAddr, 50, 20)
	t.Cleanup(holders.Close)
	time.Sleep(1500 * time.Millisecond)
	m := scrape(t, srv)
	t.Logf("%d holders sent their headers; %v connections open", holders.Sent, m.Sum("greeter_connections", nil))

	stop := make(chan struct{})
	connect := attack.PoliteConnect(attack.WellBehavedIP, httpAddr, stop)
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	calls := connect()
	for i, err := range calls.Errs {
		t.Logf("Connect call failed (%d): %v", i+1, err)
	}
	if calls.N() == 0 || len(calls.Errs) > 0 {
		t.Errorf("%d of %d Connect calls failed while HTTP/1.1 holders held the connections", len(calls.Errs), calls.N())
	}
	// The first-message timeout (10 s, shorter as memory fills) ends every
	// holder's call, and net/http closes its connection.
	deadline := time.Now().Add(25 * time.Second)
	for scrape(t, srv).Sum("greeter_connections", nil) > 0 && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
	}
	m = scrape(t, srv)
	if open := m.Sum("greeter_connections", nil); open > 0 {
		t.Errorf("%v connections still open 25 s after the holders' headers", open)
	}
	t.Logf("evicted %v, reaped %v (first-message timeout); %d holders held", m.Sum("greeter_connections_evicted_total", nil),
		m.Sum("greeter_streams_reaped_total", map[string]string{"limit": "first-message-timeout"}), holders.Held())
}
