package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/test/bench/load"
	"github.com/acme/greeter/test/harness/binaries"
	"github.com/acme/greeter/test/harness/process"
	"github.com/acme/greeter/test/harness/procstat"
)

// The HTTP port's rows: the greeter's HTTP port (connect-go handlers calling
// the gRPC port's interceptor chain) against a bare connect-go server of the same methods
// (bare.ConnectHandler, served by test/cmd/bareserver --http-addr), driven
// by h2load (Debian's nghttp2-client), an outside generator that sends one
// fixed body, over h2c or HTTP/1.1. Pinned and alternating as the gRPC rows.

// H2load is the generator of the HTTP rows.
const H2load Generator = "h2load"

// httpScenario is one shape of HTTP call.
type httpScenario struct {
	key         string // its name in -http-scenarios
	name        load.Scenario
	path        string
	contentType string
	connect     bool // unary Connect: Connect-Protocol-Version: 1
	grpcWeb     bool // the status is in the body's trailer frame
	h1          bool
	body        []byte
	perCall     int64 // operations per call: greetings for a stream
}

func httpScenarios() ([]httpScenario, error) {
	unary, err := proto.Marshal(&greeterv1.SayHelloRequest{Name: "h2load"})
	if err != nil {
		return nil, err
	}
	stream, err := proto.Marshal(&greeterv1.SayHelloStreamRequest{Name: "h2load", Count: streamLength})
	if err != nil {
		return nil, err
	}
	envelope := func(msg []byte) []byte {
		return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))), msg...)
	}
	const sayHello = "/acme.greeter.v1.GreeterService/SayHello"
	return []httpScenario{
		{key: "connect-json-h2c", name: "connect-json unary h2c", path: sayHello, contentType: "application/json", connect: true, body: []byte(`{"name":"h2load"}`), perCall: 1},
		{key: "connect-proto-h2c", name: "connect-proto unary h2c", path: sayHello, contentType: "application/proto", connect: true, body: unary, perCall: 1},
		{key: "connect-json-h1", name: "connect-json unary HTTP/1.1", path: sayHello, contentType: "application/json", connect: true, h1: true, body: []byte(`{"name":"h2load"}`), perCall: 1},
		{key: "connect-proto-h1", name: "connect-proto unary HTTP/1.1", path: sayHello, contentType: "application/proto", connect: true, h1: true, body: unary, perCall: 1},
		{key: "grpcweb-h2c", name: "grpc-web-proto unary h2c", path: sayHello, contentType: "application/grpc-web+proto", grpcWeb: true, body: envelope(unary), perCall: 1},
		{key: "grpcweb-h1", name: "grpc-web-proto unary HTTP/1.1", path: sayHello, contentType: "application/grpc-web+proto", grpcWeb: true, h1: true, body: envelope(unary), perCall: 1},
		{key: "connect-stream-h2c", name: "connect-proto server stream h2c", path: "/acme.greeter.v1.GreeterService/SayHelloStream", contentType: "application/connect+proto", body: envelope(stream), perCall: streamLength},
		{key: "grpcweb-stream-h2c", name: "grpc-web-proto server stream h2c", path: "/acme.greeter.v1.GreeterService/SayHelloStream", contentType: "application/grpc-web+proto", grpcWeb: true, body: envelope(stream), perCall: streamLength},
	}, nil
}

// HTTPScenarioKeys lists the HTTP rows' names for Config.HTTPScenarios.
func HTTPScenarioKeys() []string {
	scenarios, _ := httpScenarios()
	keys := make([]string, len(scenarios))
	for i, s := range scenarios {
		keys[i] = s.key
	}
	return keys
}

// httpRows measures every HTTP scenario at every concurrency of
// cfg.HTTPConcurrency.
func (b *bench) httpRows(ctx context.Context, dir string) ([]row, error) {
	if _, err := exec.LookPath("h2load"); err != nil {
		return nil, fmt.Errorf("h2load is missing: on Debian `sudo apt-get install -y --no-install-recommends nghttp2-client`")
	}
	scenarios, err := httpScenarios()
	if err != nil {
		return nil, err
	}
	if len(b.cfg.HTTPScenarios) > 0 {
		scenarios = slices.DeleteFunc(scenarios, func(s httpScenario) bool { return !slices.Contains(b.cfg.HTTPScenarios, s.key) })
	}
	var targets []target
	stop := func() {
		for _, t := range targets {
			_ = t.srv.Stop(30 * time.Second)
		}
	}
	defer stop()
	for _, name := range []string{binaries.Greeter.Name, binaries.BareServer.Name} {
		args := []string{"--http-addr", "127.0.0.1:0"}
		if name == binaries.Greeter.Name {
			args = append(args, b.cfg.GreeterArgs...)
		}
		var opts []process.StartOption
		if b.pins.server != "" {
			opts = append(opts, process.WithCPUs(b.pins.server))
		}
		srv, err := process.StartWith(ctx, b.bins[name], args, opts...)
		if err != nil {
			return nil, err
		}
		targets = append(targets, target{name: name, srv: srv})
		if srv.HTTPAddr == "" {
			return nil, fmt.Errorf("%s logged no http_addr", name)
		}
	}
	var rows []row
	for _, s := range scenarios {
		body := filepath.Join(dir, strings.NewReplacer(" ", "-", "/", "-").Replace(string(s.name))+".body")
		if err := os.WriteFile(body, s.body, 0o644); err != nil {
			return nil, err
		}
		for _, t := range targets {
			if err := checkHTTPCall(ctx, t.srv.HTTPAddr, s); err != nil {
				return nil, fmt.Errorf("%s %s: %w", t.name, s.name, err)
			}
		}
		for _, c := range b.cfg.HTTPConcurrency {
			r := row{gen: H2load, scenario: s.name, c: c}
			for range b.cfg.Rounds {
				for i, t := range targets {
					m, err := b.driveHTTP(ctx, t, s, body, c)
					if err != nil {
						return nil, fmt.Errorf("%s %s c=%d: %w", t.name, s.name, c, err)
					}
					r.runs[i] = append(r.runs[i], m)
				}
			}
			rows = append(rows, r)
			fmt.Fprintln(b.cfg.Progress, r.summary())
		}
	}
	return rows, nil
}

// checkHTTPCall makes one call of s, so that a row never measures errors:
// h2load sees HTTP statuses only, and a Connect stream's error comes in its
// body.
func checkHTTPCall(ctx context.Context, addr string, s httpScenario) error {
	req, err := http.NewRequestWithContext(ctx, "POST", "http://"+addr+s.path, bytes.NewReader(s.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", s.contentType)
	if s.connect {
		req.Header.Set("Connect-Protocol-Version", "1")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	got, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	failed := bytes.Contains(got, []byte(`"error"`))
	if s.grpcWeb {
		failed = !bytes.Contains(bytes.ToLower(got), []byte("grpc-status: 0"))
	}
	if res.StatusCode != http.StatusOK || failed || !bytes.Contains(got, []byte("Hello, h2load!")) {
		return fmt.Errorf("a check call answered %d %q", res.StatusCode, got)
	}
	return nil
}

var (
	h2loadRequests = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored`)
	h2loadStatus   = regexp.MustCompile(`status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
	h2loadFinished = regexp.MustCompile(`finished in ([0-9.]+)(m?s)`)
)

// driveHTTP warms t up with h2load, then measures one h2load run.
func (b *bench) driveHTTP(ctx context.Context, t target, s httpScenario, body string, c int) (run, error) {
	var argv []string
	if b.pins.client != "" {
		argv = []string{"taskset", "-c", b.pins.client}
	}
	argv = append(argv, "h2load", "-d", body, "-H", "content-type: "+s.contentType)
	if s.connect {
		argv = append(argv, "-H", "connect-protocol-version: 1")
	}
	if s.h1 {
		// HTTP/1.1 has one request per connection at a time.
		argv = append(argv, "--h1", "-c", strconv.Itoa(c), "-m", "1")
	} else {
		conns := connections(c)
		argv = append(argv, "-c", strconv.Itoa(conns), "-m", strconv.Itoa(max(1, c/conns)))
	}
	url := "http://" + t.srv.HTTPAddr + s.path
	call := func(d time.Duration) (run, error) {
		args := append(append([]string{}, argv...), "-D", strconv.Itoa(max(1, int(d.Round(time.Second).Seconds()))), url)
		out, err := runGenerator(ctx, args, d, nil)
		if err != nil {
			return run{}, err
		}
		return parseH2load(out, s.perCall)
	}
	if b.cfg.Warmup > 0 {
		if _, err := call(b.cfg.Warmup); err != nil {
			return run{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	pid := t.srv.Pid()
	if err := procstat.ResetPeak(pid); err != nil {
		return run{}, err
	}
	before, err := procstat.Read(pid)
	if err != nil {
		return run{}, err
	}
	m, err := call(b.cfg.Duration)
	if err != nil {
		return run{}, err
	}
	after, err := procstat.Read(pid)
	if err != nil {
		return run{}, err
	}
	m.cpu, m.peakRSS = after.CPU-before.CPU, after.PeakRSS
	return m, nil
}

// parseH2load reads h2load's summary: every request must have succeeded
// with a 2xx.
func parseH2load(out []byte, perCall int64) (run, error) {
	req := h2loadRequests.FindSubmatch(out)
	st := h2loadStatus.FindSubmatch(out)
	fin := h2loadFinished.FindSubmatch(out)
	if req == nil || st == nil || fin == nil {
		return run{}, fmt.Errorf("h2load's summary not found in:\n%s", out)
	}
	n := func(b []byte) int64 { v, _ := strconv.ParseInt(string(b), 10, 64); return v }
	if n(req[5]) > 0 || n(req[6]) > 0 || n(st[2])+n(st[3])+n(st[4]) > 0 {
		return run{}, fmt.Errorf("h2load: failed requests:\n%s", out)
	}
	secs, _ := strconv.ParseFloat(string(fin[1]), 64)
	if string(fin[2]) == "ms" {
		secs /= 1000
	}
	return run{ops: n(req[4]) * perCall, elapsed: time.Duration(secs * float64(time.Second))}, nil
}
