package tracing_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"

	"github.com/acme/greeter/test/harness/otlpsink"
	"github.com/acme/greeter/test/harness/process"
)

const (
	callerTrace       = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan        = "00f067aa0ba902b7"
	callerTraceparent = "00-" + callerTrace + "-" + callerSpan + "-01"
)

// collector starts a real OTLP receiver for the test.
func collector(t *testing.T) *otlpsink.Receiver {
	t.Helper()
	r, err := otlpsink.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	return r
}

// serverTracing is the environment that points the greeter at r over
// OTLP/gRPC, exporting every 100ms.
func serverTracing(r *otlpsink.Receiver) []string {
	return []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + r.GRPCEndpoint(),
		"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
		"OTEL_BSP_SCHEDULE_DELAY=100",
	}
}

// clientTracing points greetctl at r over OTLP/HTTP, the default protocol.
func clientTracing(r *otlpsink.Receiver) []string {
	return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + r.HTTPEndpoint()}
}

// greeter starts the greeter with env added to its environment; it is
// stopped (SIGTERM) at the end of the test if still running.
func greeter(t *testing.T, env []string, args ...string) *process.Server {
	t.Helper()
	srv, err := process.StartWith(context.Background(), greeterBin, append([]string{"--drain-timeout", "2s"}, args...), process.WithEnv(env...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-srv.Done():
		default:
			srv.Stop(10 * time.Second)
		}
	})
	return srv
}

// stop sends SIGTERM and requires a clean exit.
func stop(t *testing.T, srv *process.Server) {
	t.Helper()
	if err := srv.Stop(20 * time.Second); err != nil {
		t.Fatalf("greeter did not exit cleanly after SIGTERM: %v\n%s", err, srv.Log())
	}
}

// greetctl runs greetctl with only env (and a PATH, and an empty config
// directory) as its environment, so that the developer's OTEL_* and
// GREETCTL_* variables cannot leak in.
func greetctl(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, greetctlBin, args...)
	dir := t.TempDir()
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "XDG_CONFIG_HOME=" + dir}, env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("greetctl %q did not finish within 30s", args)
	}
	return process.ExitCode(err), out.String(), errOut.String()
}

// find returns the spans of service named name.
func find(spans []otlpsink.Span, service, name string) []otlpsink.Span {
	var out []otlpsink.Span
	for _, s := range spans {
		if s.Service() == service && s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// waitFor waits until the receiver has a span of each (service, name)
// pair, at most 10s.
func waitFor(t *testing.T, r *otlpsink.Receiver, pairs ...[2]string) []otlpsink.Span {
	t.Helper()
	spans, err := r.Wait(context.Background(), 10*time.Second, func(spans []otlpsink.Span) bool {
		for _, p := range pairs {
			if len(find(spans, p[0], p[1])) == 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("waiting for %v: %v; received %s", pairs, err, describe(spans))
	}
	return spans
}

func describe(spans []otlpsink.Span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "\n  %s %q %s trace %s span %s parent %s", s.Service(), s.Name, s.Kind, s.TraceID, s.SpanID, s.ParentSpanID)
	}
	return b.String()
}

const (
	sayHello       = "acme.greeter.v1.GreeterService/SayHello"
	sayHelloStream = "acme.greeter.v1.GreeterService/SayHelloStream"
)

// TestOneTraceFromGreetctlThroughServer checks that greetctl's spans and
// the server's share one trace, each the child of the one before, that -v
// names it, and that the server's access log line names the server span.
func TestOneTraceFromGreetctlThroughServer(t *testing.T) {
	r := collector(t)
	srv := greeter(t, serverTracing(r))
	code, stdout, stderr := greetctl(t, clientTracing(r), "--addr", srv.Addr, "-v", "hello", "Ada")
	if code != 0 || stdout != "Hello, Ada!\n" {
		t.Fatalf("greetctl hello: exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	spans := waitFor(t, r, [2]string{"greetctl", "greetctl hello"}, [2]string{"greetctl", sayHello}, [2]string{"greeter", sayHello})
	command := find(spans, "greetctl", "greetctl hello")[0]
	client := find(spans, "greetctl", sayHello)[0]
	server := find(spans, "greeter", sayHello)[0]
	if command.ParentSpanID != "" || command.Kind != "Internal" {
		t.Errorf("command span: parent %q kind %s, want a root, Internal", command.ParentSpanID, command.Kind)
	}
	if client.TraceID != command.TraceID || client.ParentSpanID != command.SpanID || client.Kind != "Client" {
		t.Errorf("client span: trace %s parent %s kind %s, want trace %s, parent the command span %s, Client",
			client.TraceID, client.ParentSpanID, client.Kind, command.TraceID, command.SpanID)
	}
	if server.TraceID != command.TraceID || server.ParentSpanID != client.SpanID || server.Kind != "Server" {
		t.Errorf("server span: trace %s parent %s kind %s, want trace %s, parent the client span %s, Server",
			server.TraceID, server.ParentSpanID, server.Kind, command.TraceID, client.SpanID)
	}
	for k, want := range map[string]any{"rpc.system.name": "grpc", "rpc.method": sayHello, "rpc.response.status_code": "OK"} {
		if got := server.Attributes[k]; got != want {
			t.Errorf("server span %s = %v, want %v", k, got, want)
		}
	}
	if !strings.Contains(stderr, "* trace-id: "+command.TraceID+"\n") {
		t.Errorf("greetctl -v does not print trace id %s:\n%s", command.TraceID, stderr)
	}
	logLine := regexp.MustCompile(`msg="finished call".*grpc.method=SayHello .*trace_id=` + server.TraceID + ` span_id=` + server.SpanID)
	// Info lines reach the log within 100ms (the server buffers them).
	for deadline := time.Now().Add(5 * time.Second); !logLine.MatchString(srv.Log()); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("no access log line naming trace %s span %s:\n%s", server.TraceID, server.SpanID, srv.Log())
			break
		}
	}

	// A stream is one span, with no message events unless asked for.
	if code, _, stderr := greetctl(t, clientTracing(r), "--addr", srv.Addr, "stream", "Ada", "-n", "5"); code != 0 {
		t.Fatalf("greetctl stream: exit %d: %s", code, stderr)
	}
	spans = waitFor(t, r, [2]string{"greeter", sayHelloStream})
	streams := find(spans, "greeter", sayHelloStream)
	if len(streams) != 1 || len(streams[0].Events) != 0 {
		t.Errorf("stream of 5 greetings: %d server spans (events %v), want one without events", len(streams), streams)
	}
}

// TestCallersTraceparent checks that a call carrying a caller's
// traceparent joins the caller's trace: from greetctl not traced itself
// (--traceparent is sent as given) and traced (-H traceparent makes the
// command span the caller's child).
func TestCallersTraceparent(t *testing.T) {
	r := collector(t)
	srv := greeter(t, serverTracing(r))
	if code, _, stderr := greetctl(t, nil, "--addr", srv.Addr, "--traceparent", callerTraceparent, "hello", "Ada"); code != 0 {
		t.Fatalf("greetctl: exit %d: %s", code, stderr)
	}
	spans := waitFor(t, r, [2]string{"greeter", sayHello})
	server := find(spans, "greeter", sayHello)[0]
	if server.TraceID != callerTrace || server.ParentSpanID != callerSpan {
		t.Errorf("server span in trace %s, parent %s; want the caller's %s, %s", server.TraceID, server.ParentSpanID, callerTrace, callerSpan)
	}

	if code, _, stderr := greetctl(t, clientTracing(r), "--addr", srv.Addr, "-H", "traceparent: "+callerTraceparent, "hello-again", "Ada"); code != 0 {
		t.Fatalf("greetctl: exit %d: %s", code, stderr)
	}
	spans = waitFor(t, r, [2]string{"greetctl", "greetctl hello-again"}, [2]string{"greeter", "acme.greeter.v1.GreeterService/SayHelloAgain"})
	command := find(spans, "greetctl", "greetctl hello-again")[0]
	server = find(spans, "greeter", "acme.greeter.v1.GreeterService/SayHelloAgain")[0]
	if command.TraceID != callerTrace || command.ParentSpanID != callerSpan || server.TraceID != callerTrace {
		t.Errorf("command span in trace %s parent %s, server span in trace %s; want the caller's trace %s, parent %s",
			command.TraceID, command.ParentSpanID, server.TraceID, callerTrace, callerSpan)
	}

	// A traceparent that is not one is a usage error, before any call.
	code, _, stderr := greetctl(t, nil, "--addr", srv.Addr, "--traceparent", "4bf92f3577b34da6a3ce929d0e0e4736", "hello", "Ada")
	if code != 2 || !strings.Contains(stderr, "is not a W3C traceparent: want 00-<trace id: 32 hex digits>-<parent span id: 16 hex digits>-") {
		t.Errorf("malformed --traceparent: exit %d, stderr %q; want 2 and what a traceparent looks like", code, stderr)
	}
}

// TestRejectedCall checks that a call validation rejects is marked with its
// code and the rejected field, and that no span anywhere carries the value.
func TestRejectedCall(t *testing.T) {
	r := collector(t)
	srv := greeter(t, serverTracing(r))
	secret := strings.Repeat("sekrit", 20) // over the 100-character limit
	if code, _, stderr := greetctl(t, clientTracing(r), "--addr", srv.Addr, "hello", secret); code != 3 {
		t.Fatalf("greetctl hello: exit %d, want 3 (rejected): %s", code, stderr)
	}
	spans := waitFor(t, r, [2]string{"greetctl", "greetctl hello"}, [2]string{"greeter", sayHello})
	server := find(spans, "greeter", sayHello)[0]
	if got := server.Attributes["rpc.response.status_code"]; got != "INVALID_ARGUMENT" {
		t.Errorf("server span rpc.response.status_code = %v, want INVALID_ARGUMENT", got)
	}
	if got := fmt.Sprint(server.Attributes["greeter.validation.fields"], server.Attributes["greeter.validation.rules"]); got != "[name] [string.max_len]" {
		t.Errorf("server span rejected fields and rules %s, want [name] [string.max_len]", got)
	}
	for _, s := range find(spans, "greetctl", "greetctl hello") {
		if s.StatusCode != "Error" || s.Attributes["process.exit.code"] != int64(3) {
			t.Errorf("command span status %s, exit code %v; want Error, 3", s.StatusCode, s.Attributes["process.exit.code"])
		}
	}
	for _, s := range spans {
		if text := fmt.Sprint(s.Attributes, s.Events, s.StatusMessage); strings.Contains(text, "sekrit") {
			t.Errorf("%s span %q carries the rejected value: %s", s.Service(), s.Name, text)
		}
	}
}

// TestHealthAndReflectionNotTraced checks that probes and reflection make
// no spans.
func TestHealthAndReflectionNotTraced(t *testing.T) {
	r := collector(t)
	srv := greeter(t, serverTracing(r))
	conn, err := grpc.NewClient("passthrough:///"+srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	for range 5 {
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Recv(); err != nil {
		t.Fatal(err)
	}
	rs.CloseSend()
	if _, err := rs.Recv(); err != io.EOF {
		t.Fatalf("reflection: %v, want EOF", err)
	}
	// A traced call after them, then the drain's flush: everything the
	// server would export has been exported.
	if _, err := greeterv1.NewGreeterServiceClient(conn).SayHello(ctx, &greeterv1.SayHelloRequest{Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	stop(t, srv)
	spans := r.Spans()
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{sayHello}) {
		t.Errorf("spans %q, want only %s: health and reflection are not traced", names, sayHello)
	}
}

// TestSIGTERMFlushesBufferedSpans checks that spans still buffered when the
// server is told to stop are exported before it exits: with a schedule
// delay of 10 minutes only the drain's flush can send them.
func TestSIGTERMFlushesBufferedSpans(t *testing.T) {
	r := collector(t)
	env := append(serverTracing(r), "OTEL_BSP_SCHEDULE_DELAY=600000")
	srv := greeter(t, env)
	for _, name := range []string{"Ada", "Grace", "Linus"} {
		if code, _, stderr := greetctl(t, nil, "--addr", srv.Addr, "hello", name); code != 0 {
			t.Fatalf("greetctl: exit %d: %s", code, stderr)
		}
	}
	// Nothing is exported yet: the spans are in the batch queue.
	time.Sleep(300 * time.Millisecond)
	if n := r.SpanCount(); n != 0 {
		t.Fatalf("%d spans arrived before SIGTERM; the test needs them buffered", n)
	}
	stop(t, srv)
	// No waiting: the process exits only after the flush.
	if got := len(find(r.Spans(), "greeter", sayHello)); got != 3 {
		t.Errorf("after SIGTERM the receiver has %d of the 3 server spans:%s", got, describe(r.Spans()))
	}
}

// TestCollectorDown checks that an unreachable collector costs the calls
// nothing, is logged once (and counted), and does not hold up the exit.
func TestCollectorDown(t *testing.T) {
	down, err := process.FreeAddr() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	srv := greeter(t, []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + down,
		"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
		"OTEL_BSP_SCHEDULE_DELAY=50",     // an export attempt every 50ms
		"OTEL_EXPORTER_OTLP_TIMEOUT=200", // each given up after 200ms
	})
	conn, err := grpc.NewClient("passthrough:///"+srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := greeterv1.NewGreeterServiceClient(conn)
	const calls = 40
	var slowest time.Duration
	for i := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		_, err := client.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "Ada"})
		cancel()
		if err != nil {
			t.Fatalf("call %d with the collector down: %v", i, err)
		}
		slowest = max(slowest, time.Since(start))
		time.Sleep(25 * time.Millisecond) // spread the calls over several failed exports
	}
	conn.Close()
	t.Logf("%d calls succeeded, slowest %s", calls, slowest)
	start := time.Now()
	stop(t, srv)
	// Drain delay 0 + drain timeout 2s bound the flush; the 200ms export
	// timeout ends it sooner.
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("exit took %s after SIGTERM, want within the drain budget", took)
	}
	log := srv.Log()
	if n := strings.Count(log, "tracing error;"); n != 1 {
		t.Errorf("the export error was logged %d times, want once:\n%s", n, log)
	}
	repeated := regexp.MustCompile(`msg="tracing error repeated" kind="gRPC Unavailable" count=(\d+)`).FindStringSubmatch(log)
	if repeated == nil {
		t.Errorf("no count of the repeated export errors at exit:\n%s", log)
	} else if repeated[1] == "1" {
		t.Errorf("repeated count %s, want the many failed exports counted", repeated[1])
	}
}

// TestHTTPPortJoinsTheTrace: a browser's call on the HTTP port (Connect
// JSON, with the traceparent header fetch sends when the page is traced)
// is traced like a gRPC call, in the caller's trace.
func TestHTTPPortJoinsTheTrace(t *testing.T) {
	r := collector(t)
	srv := greeter(t, serverTracing(r), "--http-addr", "127.0.0.1:0")
	req, err := http.NewRequest("POST", "http://"+srv.HTTPAddr+"/"+sayHello, strings.NewReader(`{"name":"Ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	req.Header.Set("traceparent", callerTraceparent)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("SayHello over HTTP: %d %s", res.StatusCode, body)
	}
	spans := waitFor(t, r, [2]string{"greeter", sayHello})
	server := find(spans, "greeter", sayHello)[0]
	if server.TraceID != callerTrace || server.ParentSpanID != callerSpan {
		t.Errorf("server span in trace %s, parent %s; want the caller's %s, %s", server.TraceID, server.ParentSpanID, callerTrace, callerSpan)
	}
}
