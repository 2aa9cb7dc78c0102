package reliability_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/greeter/test/harness/process"
)

// startGreeter starts a greeter logging to a file in the test's directory,
// killed when the test ends if still running.
func startGreeter(t *testing.T, args ...string) *process.Server {
	t.Helper()
	return process.StartForTest(t, greeterBin, args...)
}

// startQuiet starts a greeter at --log-level warn (no access log) with its
// admin server.
func startQuiet(t *testing.T, args ...string) *process.Server {
	t.Helper()
	return process.StartQuietForTest(t, greeterBin, args...)
}

// greetctl runs greetctl with args against addr (plaintext unless args
// say otherwise) and returns its exit code, stdout and stderr.
func greetctl(t *testing.T, timeout time.Duration, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, greetctlBin, args...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("greetctl %q did not finish within %s", args, timeout)
	}
	return process.ExitCode(err), stdout.String(), stderr.String()
}

// noStackTrace fails if output looks like a Go crash.
func noStackTrace(t *testing.T, output string) {
	t.Helper()
	for _, bad := range []string{"goroutine ", "panic", "runtime."} {
		if strings.Contains(output, bad) {
			t.Fatalf("output has %q:\n%s", bad, output)
		}
	}
}

// TestServerKilledMidStream: SIGKILL while greetctl reads a long stream.
// greetctl reports UNAVAILABLE cleanly and exits 4; a server restarted on
// the same port serves `greetctl hello` again.
func TestServerKilledMidStream(t *testing.T) {
	srv := startGreeter(t)
	addr := srv.Addr

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, greetctlBin, "--addr", addr, "--timeout", "0", "stream", "Ada", "--count", "1000", "--interval", "10ms")
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
	stdout := &lineBuffer{}
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for len(stdout.Lines()) < 20 {
		if ctx.Err() != nil {
			t.Fatal("greetctl printed fewer than 20 greetings")
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.Kill()
	err := cmd.Wait()
	received := len(stdout.Lines())
	code := process.ExitCode(err)
	t.Logf("greetctl after SIGKILL: exit %d after %d greetings; stderr: %s", code, received, strings.TrimSpace(stderr.String()))
	if code != 4 {
		t.Errorf("exit code %d, want 4 (unavailable)", code)
	}
	if received >= 1000 {
		t.Errorf("all %d greetings arrived: the kill came too late", received)
	}
	if !strings.Contains(stderr.String(), "Unavailable") {
		t.Errorf("stderr does not say Unavailable:\n%s", stderr.String())
	}
	noStackTrace(t, stderr.String())

	// While nothing listens: the call fails fast and cleanly.
	start := time.Now()
	code, _, errOut := greetctl(t, 30*time.Second, "--addr", addr, "hello", "Ada")
	t.Logf("greetctl hello with the server down: exit %d in %s: %s", code, time.Since(start).Round(time.Millisecond), strings.TrimSpace(errOut))
	if code != 4 {
		t.Errorf("hello with the server down: exit %d, want 4", code)
	}
	noStackTrace(t, errOut)

	// Restarted on the same port.
	srv2 := startGreeter(t, "--grpc-addr", addr)
	if srv2.Addr != addr {
		t.Fatalf("restarted on %s, want %s", srv2.Addr, addr)
	}
	code, out, errOut := greetctl(t, 30*time.Second, "--addr", addr, "hello", "Ada")
	if code != 0 || strings.TrimSpace(out) != "Hello, Ada!" {
		t.Fatalf("hello after the restart: exit %d, %q, %s", code, out, errOut)
	}
}

// TestCallDuringRestart issues `greetctl hello` (default retry policy:
// 4 attempts on UNAVAILABLE, backoff 0.1s to 1s) while the server is down
// and restarts it after a delay. What holds: the call fails cleanly with
// exit 4 within about 0.7s, even when the server is back 200ms later.
// grpc-go's retries run while the channel is in TRANSIENT_FAILURE after
// the refused dial, and the channel does not dial again before its
// reconnect backoff (1s, jittered) — longer than the whole retry budget
// (jittered backoffs of at most 0.1+0.2+0.4s). Only a call whose first
// dial finds the server up succeeds. Asserted strictly for a 2s outage
// (exit 4, before the restart); shorter ones may race greetctl's start.
func TestCallDuringRestart(t *testing.T) {
	srv := startGreeter(t)
	addr := srv.Addr
	srv.Kill()
	for _, down := range []time.Duration{0, 200 * time.Millisecond, 2 * time.Second} {
		t.Run(down.String(), func(t *testing.T) {
			type result struct {
				code     int
				out, err string
				took     time.Duration
			}
			done := make(chan result, 1)
			start := time.Now()
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, greetctlBin, "--addr", addr, "hello", "Ada")
				cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
				var o, e strings.Builder
				cmd.Stdout, cmd.Stderr = &o, &e
				err := cmd.Run()
				done <- result{process.ExitCode(err), o.String(), e.String(), time.Since(start)}
			}()
			time.Sleep(down)
			s := startGreeter(t, "--grpc-addr", addr)
			r := <-done
			t.Logf("server down %s (serving again after %s): greetctl exit %d in %s: %s%s", down, time.Since(start).Round(time.Millisecond), r.code, r.took.Round(time.Millisecond), strings.TrimSpace(r.out), strings.TrimSpace(r.err))
			s.Kill()
			noStackTrace(t, r.err)
			switch {
			case r.code == 0 && down >= time.Second:
				t.Errorf("succeeded although the server was down for %s: the retry window is longer than measured before; update docs/reliability.md", down)
			case r.code == 0:
				// The server came up before greetctl's first dial (a loaded
				// machine starts greetctl slowly).
			case r.code != 4 || !strings.Contains(r.err, "Unavailable"):
				t.Errorf("exit %d, want 0 or 4 (Unavailable): %s", r.code, r.err)
			case r.took > 3*time.Second:
				t.Errorf("gave up after %s: retries must be bounded (4 attempts, backoff at most 1s)", r.took)
			case down >= time.Second && r.took >= down:
				t.Errorf("took %s, past the restart at %s", r.took, down)
			}
		})
	}
}

// lineBuffer keeps the complete lines written to it, safe for a child
// process's output and a test reading it at the same time.
type lineBuffer struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
}

// Write keeps complete lines.
func (l *lineBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := strings.IndexByte(string(l.partial), '\n')
		if i < 0 {
			return len(p), nil
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
}

// Lines returns the complete lines so far.
func (l *lineBuffer) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}
