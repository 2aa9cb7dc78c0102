package reliability_test

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/test/harness/metrics"
	"github.com/acme/greeter/test/harness/pki"
	"github.com/acme/greeter/test/harness/procstat"
)

// certs is a CA with a server certificate, a client certificate it signed,
// a self-signed client certificate and one from another CA.
type certs struct {
	ca, serverCert, serverKey string
	alice, aliceKey           string // signed by ca
	bob, bobKey               string // signed by ca
	selfSigned, selfKey       string
	stranger, strangerKey     string // signed by another CA
}

func newCerts(t *testing.T) certs {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.NewCA(dir, "greeter test CA")
	if err != nil {
		t.Fatal(err)
	}
	otherDir := filepath.Join(dir, "other")
	if err := os.Mkdir(otherDir, 0o700); err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA(otherDir, "other CA")
	if err != nil {
		t.Fatal(err)
	}
	var p certs
	p.ca = ca.Cert
	must := func(a, b string, err error) (string, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
	p.serverCert, p.serverKey = must(ca.Server("localhost"))
	p.alice, p.aliceKey = must(ca.Client("alice"))
	p.bob, p.bobKey = must(ca.Client("bob"))
	selfDir := filepath.Join(dir, "self")
	if err := os.Mkdir(selfDir, 0o700); err != nil {
		t.Fatal(err)
	}
	p.selfSigned, p.selfKey = must(pki.SelfSigned(selfDir, "alice"))
	p.stranger, p.strangerKey = must(other.Client("alice"))
	return p
}

// TestMutualTLSRefusesUntrustedClients: with --tls-client-ca, greetctl
// without a certificate, with a self-signed one, or with one from another
// CA is refused at the handshake (exit 4), and so is plaintext; a TLS-only
// server refuses plaintext too.
func TestMutualTLSRefusesUntrustedClients(t *testing.T) {
	p := newCerts(t)
	mtls := startGreeter(t, "--tls-cert", p.serverCert, "--tls-key", p.serverKey, "--tls-client-ca", p.ca)
	tlsOnly := startGreeter(t, "--tls-cert", p.serverCert, "--tls-key", p.serverKey)
	tests := []struct {
		desc string
		addr string
		args []string
		code int
	}{
		{"mTLS, trusted client", mtls.Addr, []string{"--ca", p.ca, "--cert", p.alice, "--key", p.aliceKey}, 0},
		{"mTLS, no client certificate", mtls.Addr, []string{"--ca", p.ca}, 4},
		{"mTLS, self-signed client certificate", mtls.Addr, []string{"--ca", p.ca, "--cert", p.selfSigned, "--key", p.selfKey}, 4},
		{"mTLS, certificate from another CA", mtls.Addr, []string{"--ca", p.ca, "--cert", p.stranger, "--key", p.strangerKey}, 4},
		{"mTLS, plaintext", mtls.Addr, []string{"--plaintext"}, 4},
		{"TLS, trusted", tlsOnly.Addr, []string{"--ca", p.ca}, 0},
		{"TLS, plaintext", tlsOnly.Addr, []string{"--plaintext"}, 4},
		{"TLS, server not trusted", tlsOnly.Addr, []string{"--tls"}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			args := append(append([]string{"--addr", tt.addr, "--timeout", "5s"}, tt.args...), "hello", "Ada")
			code, out, errOut := greetctl(t, 30*time.Second, args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			if code == 0 && strings.TrimSpace(out) != "Hello, Ada!" {
				t.Fatalf("stdout %q", out)
			}
			if code == 4 && !strings.Contains(errOut, "Unavailable") {
				t.Fatalf("stderr does not say Unavailable: %s", errOut)
			}
			noStackTrace(t, errOut)
		})
	}
	// A Go client in plaintext, for good measure.
	_, err := greeterv1.NewGreeterServiceClient(dialPlain(t, mtls.Addr)).SayHello(context.Background(), &greeterv1.SayHelloRequest{Name: "Ada"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext Go client: %v, want Unavailable", err)
	}
}

// TestRateLimitEndToEnd: --rate-limit 0.2 --rate-limit-burst 2. Two
// greetctl calls pass, the third exits 7 (ResourceExhausted, with the
// retry delay); health checks are exempt. Under mTLS the bucket is the
// certificate subject's: bob is not limited by alice's calls.
func TestRateLimitEndToEnd(t *testing.T) {
	p := newCerts(t)
	srv := startGreeter(t, "--tls-cert", p.serverCert, "--tls-key", p.serverKey, "--tls-client-ca", p.ca,
		"--rate-limit", "0.2", "--rate-limit-burst", "2")
	as := func(cert, key string, args ...string) (int, string, string) {
		return greetctl(t, 30*time.Second, append([]string{"--addr", srv.Addr, "--ca", p.ca, "--cert", cert, "--key", key}, args...)...)
	}
	for i, want := range []int{0, 0, 7} {
		code, out, errOut := as(p.alice, p.aliceKey, "hello", "Ada")
		t.Logf("alice call %d: exit %d %s%s", i+1, code, strings.TrimSpace(out), strings.TrimSpace(errOut))
		if code != want {
			t.Fatalf("alice call %d: exit %d, want %d: %s", i+1, code, want, errOut)
		}
		if code == 7 && (!strings.Contains(errOut, "ResourceExhausted") || !strings.Contains(errOut, "retry in")) {
			t.Fatalf("stderr lacks ResourceExhausted and the retry delay: %s", errOut)
		}
		noStackTrace(t, errOut)
	}
	for range 3 {
		if code, _, errOut := as(p.alice, p.aliceKey, "health"); code != 0 {
			t.Fatalf("health check limited: exit %d: %s", code, errOut)
		}
	}
	if code, _, errOut := as(p.bob, p.bobKey, "hello", "Bob"); code != 0 {
		t.Fatalf("bob limited by alice's calls: exit %d: %s", code, errOut)
	}
}

// TestReflectionCanBeDisabled: --reflection=false answers both reflection
// services UNIMPLEMENTED; by default they list the services.
func TestReflectionCanBeDisabled(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want codes.Code
	}{
		{nil, codes.OK},
		{[]string{"--reflection=false"}, codes.Unimplemented},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			srv := startGreeter(t, tt.args...)
			conn := dialPlain(t, srv.Addr)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			v1, err := reflectionv1.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
			if err == nil {
				err = v1.Send(&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{}})
			}
			// A failed Send is io.EOF; the status comes with Recv.
			var resp *reflectionv1.ServerReflectionResponse
			if v1 != nil {
				resp, err = v1.Recv()
			}
			if status.Code(err) != tt.want {
				t.Fatalf("reflection v1: %v, want %v", err, tt.want)
			}
			if err == nil && len(resp.GetListServicesResponse().GetService()) < 3 {
				t.Fatalf("reflection v1 listed %v", resp.GetListServicesResponse().GetService())
			}
			alpha, err := reflectionv1alpha.NewServerReflectionClient(conn).ServerReflectionInfo(ctx) //nolint:staticcheck // v1alpha is served too
			if err == nil {
				err = alpha.Send(&reflectionv1alpha.ServerReflectionRequest{MessageRequest: &reflectionv1alpha.ServerReflectionRequest_ListServices{}})
			}
			if alpha != nil {
				_, err = alpha.Recv()
			}
			if status.Code(err) != tt.want {
				t.Fatalf("reflection v1alpha: %v, want %v", err, tt.want)
			}
		})
	}
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, _ := strings.Cut(addr, ":")
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMetricsListeners: with --metrics-addr "" the process listens on the
// gRPC port only; with it, on exactly two ports, and the gRPC port does not
// answer GET /metrics with metrics, in HTTP/1.1 or HTTP/2.
func TestMetricsListeners(t *testing.T) {
	off := startGreeter(t) // startGreeter passes --metrics-addr ""
	ports, err := procstat.ListeningPorts(off.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ports, []int{port(t, off.Addr)}) {
		t.Fatalf("metrics disabled: listening on %v, want only the gRPC port %d", ports, port(t, off.Addr))
	}

	on := startGreeter(t, "--metrics-addr", "127.0.0.1:0")
	ports, err = procstat.ListeningPorts(on.Pid())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ports)
	want := []int{port(t, on.Addr), port(t, on.MetricsAddr)}
	slices.Sort(want)
	if !slices.Equal(ports, want) {
		t.Fatalf("listening on %v, want %v", ports, want)
	}
	if _, err := metrics.Scrape(context.Background(), on.MetricsAddr); err != nil {
		t.Fatalf("the admin port does not serve metrics: %v", err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + on.Addr + "/metrics")
	if err == nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		t.Logf("HTTP/1.1 GET /metrics on the gRPC port: %s, %d bytes", resp.Status, len(body))
		if strings.Contains(string(body), "go_goroutines") || strings.Contains(string(body), "grpc_server_") {
			t.Fatal("the gRPC port serves metrics")
		}
	} else {
		t.Logf("HTTP/1.1 GET /metrics on the gRPC port: %v", err)
	}
	// And in HTTP/2 without TLS (prior knowledge), which the gRPC port does
	// speak: an HTTP error, never metrics.
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Protocols: &protocols}}
	resp, err = h2c.Get("http://" + on.Addr + "/metrics")
	if err != nil {
		t.Fatalf("h2c GET /metrics on the gRPC port: %v", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	t.Logf("h2c GET /metrics on the gRPC port: %s %s, %q", resp.Proto, resp.Status, body)
	if resp.StatusCode == http.StatusOK || strings.Contains(string(body), "go_goroutines") || strings.Contains(string(body), "grpc_server_") {
		t.Fatal("the gRPC port serves metrics over HTTP/2")
	}
}

// keyMaterial returns distinctive pieces of the base64 body of each PEM
// key file: any of them in a log means key material leaked.
func keyMaterial(t *testing.T, files ...string) []string {
	t.Helper()
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(b)
		enc := base64.StdEncoding.EncodeToString(block.Bytes)
		for i := 0; i+24 <= len(enc); i += 24 {
			out = append(out, enc[i:i+24])
		}
	}
	return out
}

// TestNoSecretsInLogs runs a TLS + mTLS server at --log-level debug in
// both log formats, sends calls with `authorization: Bearer secret-token`
// (one valid, one failing validation, one refused client), drains it, and
// checks the whole log: the access lines are there, the token, "Bearer",
// and any piece of either private key are not.
func TestNoSecretsInLogs(t *testing.T) {
	p := newCerts(t)
	secrets := append([]string{"secret-token", "Bearer", "PRIVATE KEY"}, keyMaterial(t, p.serverKey, p.aliceKey)...)
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			srv := startGreeter(t, "--log-format", format, "--log-level", "debug",
				"--tls-cert", p.serverCert, "--tls-key", p.serverKey, "--tls-client-ca", p.ca)
			base := []string{"--addr", srv.Addr, "--ca", p.ca, "--cert", p.alice, "--key", p.aliceKey, "-H", "authorization: Bearer secret-token"}
			if code, _, errOut := greetctl(t, 30*time.Second, append(base, "hello", "Ada")...); code != 0 {
				t.Fatalf("hello: exit %d: %s", code, errOut)
			}
			if code, _, errOut := greetctl(t, 30*time.Second, append(base, "hello", "   ")...); code != 3 {
				t.Fatalf("invalid hello: exit %d, want 3: %s", code, errOut)
			}
			if code, _, _ := greetctl(t, 30*time.Second, "--addr", srv.Addr, "--ca", p.ca, "-H", "authorization: Bearer secret-token", "hello", "Ada"); code != 4 {
				t.Fatalf("client without a certificate: exit %d, want 4", code)
			}
			if code, _, _ := greetctl(t, 30*time.Second, append(base, "health")...); code != 0 {
				t.Fatalf("health: exit %d", code)
			}
			if err := srv.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if code, err := srv.Wait(30 * time.Second); err != nil || code != 0 {
				t.Fatalf("exit %d, %v", code, err)
			}
			log := srv.Log()
			if !strings.Contains(log, "InvalidArgument") || !strings.Contains(log, "finished call") {
				t.Fatalf("the log lacks the access lines; the test proves nothing:\n%s", log)
			}
			for _, s := range secrets {
				if strings.Contains(log, s) {
					t.Errorf("the %s log contains %q", format, s)
				}
			}
			t.Logf("%s log: %d bytes, %d lines, none with the token or key material", format, len(log), strings.Count(log, "\n"))
		})
	}
}
