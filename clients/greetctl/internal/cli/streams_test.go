package cli_test

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/acme/greeter/clients/greetctl/internal/exitcode"
	"github.com/acme/greeter/clients/greetctl/internal/greettest"
)

// TestStreamInterrupted cancels a stream as Ctrl-C does, once two greetings
// arrived and the server holds the third.
func TestStreamInterrupted(t *testing.T) {
	s := greettest.Start(t, greettest.Options{HoldStreamAfter: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	screen, stdout := io.Pipe()
	done := make(chan result, 1)
	go func() {
		r := runContext(t, ctx, invocation{args: args(addr(s), "stream", "Ada", "-n", "5")}, strings.NewReader(""), stdout)
		stdout.Close()
		done <- r
	}()
	lines := bufio.NewScanner(screen)
	for _, want := range []string{"1 Hello, Ada!", "2 Hello, Ada!"} {
		if !lines.Scan() || lines.Text() != want {
			t.Fatalf("got %q, want %q (%v)", lines.Text(), want, lines.Err())
		}
	}
	<-s.Held
	cancel()
	if lines.Scan() {
		t.Errorf("unexpected output %q", lines.Text())
	}
	r := <-done
	if r.code != exitcode.Interrupted {
		t.Fatalf("got %v, want exit 130", r)
	}
	want := "greetctl: stream ended early: received 2 of 5 greetings\ngreetctl stream: interrupted\n"
	if r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
}

// TestChatInteractive checks that each greeting is printed before the next
// line is typed.
func TestChatInteractive(t *testing.T) {
	s := greettest.Start(t, greettest.Options{})
	stdin, typing := io.Pipe()
	screen, stdout := io.Pipe()
	done := make(chan result, 1)
	go func() {
		r := runContext(t, context.Background(), invocation{args: args(addr(s), "chat")}, stdin, stdout)
		stdout.Close()
		done <- r
	}()
	lines := bufio.NewScanner(screen)
	for _, name := range []string{"Ada", "Grace", "Linus"} {
		if _, err := io.WriteString(typing, name+"\n"); err != nil {
			t.Fatal(err)
		}
		if !lines.Scan() {
			t.Fatalf("no greeting for %s: %v", name, lines.Err())
		}
		if got, want := lines.Text(), "Hello, "+name+"!"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	typing.Close() // Ctrl-D.
	if lines.Scan() {
		t.Errorf("unexpected output %q", lines.Text())
	}
	if r := <-done; r.code != 0 || r.stderr != "" {
		t.Errorf("got %v", r)
	}
}

// TestChatInterrupted cancels a chat waiting for input, as Ctrl-C does.
func TestChatInterrupted(t *testing.T) {
	s := greettest.Start(t, greettest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdin, typing := io.Pipe()
	defer typing.Close()
	screen, stdout := io.Pipe()
	done := make(chan result, 1)
	go func() {
		r := runContext(t, ctx, invocation{args: args(addr(s), "chat")}, stdin, stdout)
		stdout.Close()
		done <- r
	}()
	if _, err := io.WriteString(typing, "Ada\n"); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(screen)
	if !lines.Scan() || lines.Text() != "Hello, Ada!" {
		t.Fatalf("got %q, %v", lines.Text(), lines.Err())
	}
	cancel()
	go func() { _, _ = io.Copy(io.Discard, screen) }()
	r := <-done
	if r.code != exitcode.Interrupted || !strings.Contains(r.stderr, "greetings received: 1") {
		t.Errorf("got %v, want exit 130 and the count", r)
	}
}

// TestHealthWatch follows status changes until interrupted.
func TestHealthWatch(t *testing.T) {
	s := greettest.Start(t, greettest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	screen, stdout := io.Pipe()
	done := make(chan result, 1)
	go func() {
		r := runContext(t, ctx, invocation{args: args(addr(s), "health", "--watch", "acme.greeter.v1.GreeterService", "-o", "json")}, strings.NewReader(""), stdout)
		stdout.Close()
		done <- r
	}()
	lines := bufio.NewScanner(screen)
	expect := func(want string) {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("no output, want %s: %v", want, lines.Err())
		}
		if lines.Text() != want {
			t.Fatalf("got %q, want %q", lines.Text(), want)
		}
	}
	expect(`{"status":"SERVING"}`)
	s.Health.SetServingStatus("acme.greeter.v1.GreeterService", healthpb.HealthCheckResponse_NOT_SERVING)
	expect(`{"status":"NOT_SERVING"}`)
	s.Health.SetServingStatus("acme.greeter.v1.GreeterService", healthpb.HealthCheckResponse_SERVING)
	expect(`{"status":"SERVING"}`)
	cancel()
	go func() { _, _ = io.Copy(io.Discard, screen) }()
	r := <-done
	if r.code != exitcode.Interrupted || !strings.Contains(r.stderr, "status updates received: 3") {
		t.Errorf("got %v, want exit 130 and the count", r)
	}
}

func TestHealthNotServing(t *testing.T) {
	s := greettest.Start(t, greettest.Options{})
	s.Health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	r := run(t, invocation{args: args(addr(s), "health")})
	if r.code != exitcode.Unavailable || r.stdout != "NOT_SERVING\n" || r.stderr != "greetctl health: server is NOT_SERVING\n" {
		t.Errorf("got %v, want exit 4", r)
	}
}
