package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// buildBinary compiles the greeter once per test into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "greeter")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var servingLine = regexp.MustCompile(`msg=serving grpc_addr=(\S+) metrics_addr=(\S+)`)

// TestProcess runs the real binary: serve on free ports, answer a greeting
// and the readiness probe, then drain on SIGTERM and exit 0.
func TestProcess(t *testing.T) {
	bin := buildBinary(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	// The drain delay keeps the server up, and /readyz answering, long
	// enough to see readiness fail during the drain.
	cmd := exec.CommandContext(ctx, bin, "--grpc-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--drain-timeout", "10s", "--drain-delay", "2s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	// Read the log as it comes; the serving line carries the bound ports.
	lines := make(chan string, 100)
	var logged strings.Builder
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var grpcAddr, metricsAddr string
	for grpcAddr == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the server exited before serving:\n%s", logged.String())
			}
			logged.WriteString(l + "\n")
			if m := servingLine.FindStringSubmatch(l); m != nil {
				grpcAddr, metricsAddr = m[1], m[2]
			}
		case <-ctx.Done():
			t.Fatalf("no serving line:\n%s", logged.String())
		}
	}

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := greeterv1.NewGreeterServiceClient(conn).SayHello(ctx, &greeterv1.SayHelloRequest{Name: "World"})
	if err != nil || resp.GetMessage() != "Hello, World!" {
		t.Fatalf("SayHello: %v, %v", resp, err)
	}
	var header metadata.MD
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&header)); err != nil {
		t.Fatal(err)
	}
	if v := header.Get("greeter-server-version"); len(v) != 1 || !strings.Contains(v[0], "(") {
		t.Errorf("greeter-server-version = %q", v)
	}

	for path, want := range map[string]int{"/readyz": 200, "/healthz": 200, "/metrics": 200} {
		r, err := http.Get("http://" + metricsAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, r.StatusCode, want)
		}
		if path == "/metrics" && !strings.Contains(string(body), `grpc_server_handled_total{grpc_code="OK",grpc_method="SayHello"`) {
			t.Errorf("/metrics lacks the SayHello count")
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		logged.WriteString(l + "\n")
		if strings.Contains(l, "msg=draining") {
			break
		}
	}
	r, err := http.Get("http://" + metricsAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz while draining = %d, want 503", r.StatusCode)
	}
	for l := range lines {
		logged.WriteString(l + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v, want 0\n%s", err, logged.String())
	}
	for _, want := range []string{"msg=draining", "msg=stopped"} {
		if !strings.Contains(logged.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logged.String())
		}
	}
}

func TestProcessExitCodes(t *testing.T) {
	bin := buildBinary(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		desc     string
		args     []string
		code     int
		output   string
		inStdout bool
	}{
		{"help", []string{"--help"}, 0, "GREETER_GRPC_ADDR", false},
		{"version", []string{"--version"}, 0, "greeter ", true},
		{"negative timeout", []string{"--drain-timeout", "-1s"}, 2, "must not be negative", false},
		{"bad address", []string{"--grpc-addr", "nowhere"}, 2, "--grpc-addr", false},
		{"missing cert", []string{"--tls-cert", "/nonexistent.crt", "--tls-key", "/nonexistent.key"}, 2, "--tls-cert", false},
		{"cert is not a certificate", []string{"--tls-cert", garbage, "--tls-key", garbage, "--metrics-addr", ""}, 2, "load TLS key pair", false},
		// Valid configuration, but the port cannot be bound: a runtime failure.
		{"port taken", []string{"--grpc-addr", taken.Addr().String(), "--metrics-addr", ""}, 1, "listen for gRPC", false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tt.args...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			out := stderr.String()
			if tt.inStdout {
				out = stdout.String()
			}
			if code != tt.code || !strings.Contains(out, tt.output) {
				t.Fatalf("exit %d, output %q; want exit %d with %q", code, out, tt.code, tt.output)
			}
		})
	}
}

// TestProcessTracingConfig checks that an OpenTelemetry setting the server
// cannot use is bad configuration (exit 2) naming it, not a server that
// starts without the tracing it was asked for.
func TestProcessTracingConfig(t *testing.T) {
	bin := buildBinary(t)
	for _, tt := range []struct {
		desc   string
		env    []string
		output string
	}{
		{"unknown exporter", []string{"OTEL_TRACES_EXPORTER=zipkin"}, `OTEL_TRACES_EXPORTER=\"zipkin\"`},
		{"malformed resource attributes", []string{"OTEL_TRACES_EXPORTER=otlp", "OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name"}, "OTEL_RESOURCE_ATTRIBUTES"},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "--grpc-addr", "127.0.0.1:0", "--metrics-addr", "")
			cmd.Env = append(os.Environ(), tt.env...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(stderr.String(), tt.output) {
				t.Fatalf("got %v, stderr %q; want exit 2 naming %s", err, stderr.String(), tt.output)
			}
		})
	}
}
