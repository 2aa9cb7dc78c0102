package cli_test

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme/greeter/clients/greetctl/internal/exitcode"
	"github.com/acme/greeter/clients/greetctl/internal/greettest"
)

func TestUnreachableServerExitsUnavailable(t *testing.T) {
	// A port nobody listens on: take one and give it back.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis.Close()
	r := run(t, invocation{args: []string{"--addr", lis.Addr().String(), "hello", "Ada"}})
	if r.code != exitcode.Unavailable || !strings.Contains(r.stderr, "Unavailable") {
		t.Errorf("got %v, want exit 4 with Unavailable", r)
	}
}

// TestRetries checks that an idempotent call is retried after UNAVAILABLE,
// and not with --no-retry.
func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantCode  int
		wantCalls int
	}{
		{"hello retried", []string{"hello", "Ada"}, 0, 2},
		{"hello-again retried", []string{"hello-again", "Ada"}, 0, 2},
		{"classic hello retried", []string{"--classic", "hello", "Ada"}, 0, 2},
		{"no retry", []string{"--no-retry", "hello", "Ada"}, exitcode.Unavailable, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := greettest.Start(t, greettest.Options{FailUnary: 1})
			r := run(t, invocation{args: append(addr(s), tt.args...)})
			if r.code != tt.wantCode {
				t.Errorf("got %v, want exit %d", r, tt.wantCode)
			}
			if got := s.Calls(); got != tt.wantCalls {
				t.Errorf("server saw %d attempts, want %d", got, tt.wantCalls)
			}
		})
	}
}

// TestReplicaList checks that a comma-separated --addr reaches the servers;
// internal/dial tests that calls are spread round-robin.
func TestReplicaList(t *testing.T) {
	a := greettest.Start(t, greettest.Options{})
	b := greettest.Start(t, greettest.Options{})
	r := run(t, invocation{args: []string{"--addr", a.Addr + ", " + b.Addr, "hello", "Ada"}})
	if r.code != 0 || r.stdout != "Hello, Ada!\n" {
		t.Fatalf("got %v", r)
	}
	if a.Calls()+b.Calls() != 1 {
		t.Errorf("servers saw %d and %d calls, want 1 in all", a.Calls(), b.Calls())
	}
}

func TestTargetURI(t *testing.T) {
	s := greettest.Start(t, greettest.Options{})
	for _, target := range []string{"dns:///" + s.Addr, "passthrough:///" + s.Addr} {
		t.Run(target, func(t *testing.T) {
			r := run(t, invocation{args: []string{"--addr", target, "hello", "Ada"}})
			if r.code != 0 || r.stdout != "Hello, Ada!\n" {
				t.Errorf("got %v", r)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	pki := greettest.NewPKI(t)
	tlsServer := greettest.Start(t, greettest.Options{TLS: pki.ServerTLS(false)})
	mtlsServer := greettest.Start(t, greettest.Options{TLS: pki.ServerTLS(true)})
	plainServer := greettest.Start(t, greettest.Options{})
	tests := []struct {
		name       string
		server     *greettest.Server
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"ca", tlsServer, []string{"--ca", pki.CAFile}, 0, ""},
		{"server name", tlsServer, []string{"--ca", pki.CAFile, "--server-name", greettest.ServerName}, 0, ""},
		{"wrong server name", tlsServer, []string{"--ca", pki.CAFile, "--server-name", "evil.test"}, exitcode.Unavailable, "certificate"},
		{"untrusted CA", tlsServer, []string{"--ca", pki.OtherCAFile}, exitcode.Unavailable, "certificate"},
		{"system roots do not know the test CA", tlsServer, []string{"--tls"}, exitcode.Unavailable, "certificate"},
		{"insecure skip verify", tlsServer, []string{"--insecure-skip-verify"}, 0, "WARNING: --insecure-skip-verify"},
		{"plaintext to a TLS server", tlsServer, nil, exitcode.Unavailable, ""},
		{"mutual TLS", mtlsServer, []string{"--ca", pki.CAFile, "--cert", pki.ClientCertFile, "--key", pki.ClientKeyFile}, 0, ""},
		{"mutual TLS without a client certificate", mtlsServer, []string{"--ca", pki.CAFile}, exitcode.Unavailable, ""},
		{"TLS to a plaintext server", plainServer, []string{"--ca", pki.CAFile}, exitcode.Unavailable, ""},
		{"missing CA file", tlsServer, []string{"--ca", filepath.Join(t.TempDir(), "none.pem")}, exitcode.Failure, "--ca"},
		{"CA file without certificates", tlsServer, []string{"--ca", pki.ClientKeyFile}, exitcode.Failure, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, invocation{args: append(append(addr(tt.server), "--no-retry", "hello", "Ada"), tt.args...)})
			if r.code != tt.wantCode {
				t.Fatalf("got %v, want exit %d", r, tt.wantCode)
			}
			if tt.wantCode == 0 && r.stdout != "Hello, Ada!\n" {
				t.Errorf("stdout %q", r.stdout)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", r.stderr, tt.wantStderr)
			}
		})
	}
}

// droppingListener holds a loopback port and drops every connection to
// it, reporting each on the returned channel: a server that is down, whose
// port a test can still watch.
func droppingListener(t *testing.T) (net.Listener, <-chan struct{}) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	attempts := make(chan struct{}, 64)
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Close()
			select {
			case attempts <- struct{}{}:
			default:
			}
		}
	}()
	return lis, attempts
}

// TestWaitForReady starts a call while nothing serves the address and the
// server only afterwards: with --wait-for-ready the call waits for it and
// succeeds; without it the call fails at once with exit 4.
func TestWaitForReady(t *testing.T) {
	down, _ := droppingListener(t)
	if res := run(t, invocation{args: []string{"--addr", down.Addr().String(), "hello", "Ada"}}); res.code != 4 {
		t.Fatalf("without --wait-for-ready: exit %d, want 4 (unavailable)\n%s", res.code, res.stderr)
	}

	lis, attempts := droppingListener(t)
	addr := lis.Addr().String()
	done := make(chan result, 1)
	go func() {
		done <- run(t, invocation{args: []string{"--addr", addr, "--wait-for-ready", "--timeout", "30s", "hello", "Ada"}})
	}()
	// A second connection attempt proves the call outlived the failure of
	// the first, which is what a call without --wait-for-ready does not.
	for range 2 {
		select {
		case <-attempts:
		case res := <-done:
			t.Fatalf("the call ended while the server was down: exit %d\n%s", res.code, res.stderr)
		}
	}
	lis.Close()
	greettest.Start(t, greettest.Options{Addr: addr})
	res := <-done
	if res.code != 0 || !strings.Contains(res.stdout, "Hello, Ada!") {
		t.Fatalf("with --wait-for-ready: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
}
