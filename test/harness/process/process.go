// Package process runs a server binary of this repository (the greeter, or
// the bare grpc-go server of the benchmark) as a child process on a
// loopback port chosen by the kernel, for the tests and benchmarks that need
// the real process: release checks, faults, drain, scaling and load.
package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a running server process.
type Server struct {
	// Addr is the gRPC address the server bound, e.g. 127.0.0.1:43121.
	Addr string
	// MetricsAddr is the bound admin HTTP address, or "" when disabled.
	MetricsAddr string
	// HTTPAddr is the bound HTTP port (Connect, gRPC-Web), or "" when
	// disabled, as it is unless args set --http-addr.
	HTTPAddr string

	cmd     *exec.Cmd
	logText func() string
	done    chan struct{}
	err     error
}

// startTimeout bounds how long a server may take to start serving.
const startTimeout = 30 * time.Second

// addrPattern finds the bound addresses in the server's "serving" log line,
// in the text or the JSON log format.
var addrPattern = regexp.MustCompile(`(grpc_addr|metrics_addr|http_addr)"?[=:]"?([^\s",]*)`)

// Start runs bin with `--grpc-addr 127.0.0.1:0 --metrics-addr "" --http-addr ""`
// followed by args, so args may override them (pass `--metrics-addr
// 127.0.0.1:0` to get the admin server, `--http-addr 127.0.0.1:0` the HTTP
// port), and waits until the server logs its "serving" line
// with the addresses it bound, at most 30s. When args give a fixed
// --grpc-addr (for a log level that hides that line, say), the server is
// ready once that address and a fixed --metrics-addr accept connections, and MetricsAddr is
// --metrics-addr as given.
//
// Start keeps the head and the tail of what the server prints (64 KiB
// each), so a server logging every RPC under load cannot grow the caller;
// use StartLogged to keep all of it.
func Start(ctx context.Context, bin string, args ...string) (*Server, error) {
	return StartWith(ctx, bin, args)
}

// StartLogged is Start with everything the server prints written to the file
// logPath, for tests that count access-log lines.
func StartLogged(ctx context.Context, bin, logPath string, args ...string) (*Server, error) {
	return StartWith(ctx, bin, args, WithLogFile(logPath))
}

// StartForTest is StartLogged for one test: the log is greeter.log in the
// test's temporary directory, and the server is killed when the test ends if
// it is still running. It fails the test if the server does not start.
func StartForTest(t testing.TB, bin string, args ...string) *Server {
	t.Helper()
	s, err := StartLogged(context.Background(), bin, filepath.Join(t.TempDir(), "greeter.log"), args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-s.Done():
		default:
			s.Kill()
		}
	})
	return s
}

// StartQuietForTest is StartForTest at --log-level warn, with the admin
// server, on loopback ports picked beforehand: at warn the greeter logs no
// access line (none for tens of thousands of RPCs a test makes) and no
// "serving" line to read its addresses from. args come after, so they may
// override any of it.
func StartQuietForTest(t testing.TB, bin string, args ...string) *Server {
	t.Helper()
	addrs, err := FreeAddrs(2)
	if err != nil {
		t.Fatal(err)
	}
	return StartForTest(t, bin, append([]string{"--grpc-addr", addrs[0], "--metrics-addr", addrs[1], "--log-level", "warn"}, args...)...)
}

// StartOption changes how StartWith runs a server.
type StartOption func(*launch)

type launch struct {
	env     []string
	logPath string
	cpus    string
}

// WithEnv adds variables, "KEY=value" each, to the environment the server
// inherits from this process; where a key is given twice, the last wins.
// The default is the inherited environment alone.
func WithEnv(env ...string) StartOption {
	return func(l *launch) { l.env = append(l.env, env...) }
}

// WithLogFile writes everything the server prints to the file logPath, for
// tests that count log lines. The default keeps the head and the tail in
// memory (see Start).
func WithLogFile(logPath string) StartOption {
	return func(l *launch) { l.logPath = logPath }
}

// WithCPUs binds the process and every thread it starts to the CPUs cpus
// lists ("0", "2-3": taskset's notation), for benchmarks that keep the
// server and the load generator off each other's cores. The server runs
// through taskset(1), which executes it in its own place, so Pid is the
// server's. The default is no binding.
func WithCPUs(cpus string) StartOption {
	return func(l *launch) { l.cpus = cpus }
}

// StartWith is Start with options.
func StartWith(ctx context.Context, bin string, args []string, opts ...StartOption) (*Server, error) {
	var l launch
	for _, o := range opts {
		o(&l)
	}
	var out io.Writer
	var logText func() string
	if l.logPath != "" {
		f, err := os.Create(l.logPath)
		if err != nil {
			return nil, err
		}
		// The child writes to its own copy of the descriptor.
		defer f.Close()
		out, logText = f, func() string {
			b, _ := os.ReadFile(l.logPath)
			return string(b)
		}
	} else {
		buf := &boundedBuffer{}
		out, logText = buf, buf.String
	}
	return start(ctx, bin, out, logText, l, args)
}

func start(ctx context.Context, bin string, out io.Writer, logText func() string, l launch, args []string) (*Server, error) {
	s := &Server{logText: logText, done: make(chan struct{})}
	argv := append([]string{bin, "--grpc-addr", "127.0.0.1:0", "--metrics-addr", "", "--http-addr", ""}, args...)
	if l.cpus != "" {
		argv = append([]string{"taskset", "-c", l.cpus}, argv...)
	}
	s.cmd = exec.Command(argv[0], argv[1:]...)
	env := l.env
	if len(env) > 0 {
		// exec uses the last value of a key.
		s.cmd.Env = append(os.Environ(), env...)
	}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	fixedGRPC, fixedMetrics := FlagValue(args, "--grpc-addr"), FlagValue(args, "--metrics-addr")
	if _, port, _ := net.SplitHostPort(fixedGRPC); port == "" || port == "0" {
		fixedGRPC = ""
	}
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if fixedGRPC != "" {
			// The kernel accepts a connection once a port is bound, before
			// the server serves it; the server binds both ports before it
			// serves either, so both accepting means both are bound.
			if accepts(fixedGRPC) && (fixedMetrics == "" || accepts(fixedMetrics)) {
				s.Addr, s.MetricsAddr = fixedGRPC, fixedMetrics
				return s, nil
			}
		} else if s.readAddrs() {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("%s exited before serving (%v):\n%s", bin, s.err, s.Log())
		case <-ctx.Done():
			s.Kill()
			return nil, ctx.Err()
		case <-deadline.C:
			s.Kill()
			return nil, fmt.Errorf("%s did not start serving within %s:\n%s", bin, startTimeout, s.Log())
		case <-tick.C:
		}
	}
}

// accepts reports whether addr accepts a TCP connection.
func accepts(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// readAddrs reads the bound addresses from the "serving" line, reporting
// whether it has been logged.
func (s *Server) readAddrs() bool {
	for _, line := range strings.Split(s.Log(), "\n") {
		if !strings.Contains(line, "serving") {
			continue
		}
		for _, m := range addrPattern.FindAllStringSubmatch(line, -1) {
			switch m[1] {
			case "grpc_addr":
				s.Addr = m[2]
			case "metrics_addr":
				s.MetricsAddr = m[2]
			case "http_addr":
				s.HTTPAddr = m[2]
			}
		}
		if s.Addr != "" {
			return true
		}
	}
	return false
}

// FlagValue is the last value of flag name (e.g. "--grpc-addr") in args,
// or "".
func FlagValue(args []string, name string) string {
	v := ""
	for i, a := range args {
		if x, ok := strings.CutPrefix(a, name+"="); ok {
			v = x
		} else if a == name && i+1 < len(args) {
			v = args[i+1]
		}
	}
	return v
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago, for a server that must be started on a known port.
func FreeAddr() (string, error) {
	addrs, err := FreeAddrs(1)
	if err != nil {
		return "", err
	}
	return addrs[0], nil
}

// FreeAddrs returns n loopback addresses with distinct ports that were free
// a moment ago. Each port is held until all are picked: picked one after
// another, the kernel may hand the port just released out again (a server
// was once given the same port for --grpc-addr and --metrics-addr).
func FreeAddrs(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// Stop sends SIGTERM, the orchestrator's way to ask for a drain, and waits
// for the process to exit (at most timeout, then it is killed). It returns
// the process's exit error: nil for exit status 0.
func (s *Server) Stop(timeout time.Duration) error {
	if err := s.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-s.done:
		return s.err
	case <-time.After(timeout):
		s.Kill()
		return fmt.Errorf("server did not exit within %s of SIGTERM", timeout)
	}
}

// Wait waits at most timeout for the process to exit and returns its exit
// code (-1 if a signal ended it).
func (s *Server) Wait(timeout time.Duration) (int, error) {
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode(), nil
	case <-time.After(timeout):
		return 0, fmt.Errorf("process %d did not exit within %s", s.Pid(), timeout)
	}
}

// Kill ends the process at once (SIGKILL) and waits for it.
func (s *Server) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Signal sends sig to the process.
func (s *Server) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }

// Pid is the process ID.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Log is what the server printed so far (see Start and StartLogged for how
// much of it is kept).
func (s *Server) Log() string { return s.logText() }

// Done is closed when the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// ExitCode is the exit code of a finished command's error: 0 for nil, -1
// for an error that is not an exit status.
func ExitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// logKeep bounds what a boundedBuffer keeps: its first logKeep bytes
// (start-up, the bound addresses) and its last logKeep bytes (the drain).
const logKeep = 64 << 10

// boundedBuffer keeps the head and the tail of what is written to it.
type boundedBuffer struct {
	mu      sync.Mutex
	head    bytes.Buffer
	tail    []byte
	dropped int64
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if room := logKeep - b.head.Len(); room > 0 {
		k := min(room, len(p))
		b.head.Write(p[:k])
		p = p[k:]
	}
	b.tail = append(b.tail, p...)
	if over := len(b.tail) - logKeep; over > 0 {
		b.dropped += int64(over)
		b.tail = append(b.tail[:0], b.tail[over:]...)
	}
	return n, nil
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped == 0 {
		return b.head.String() + string(b.tail)
	}
	return fmt.Sprintf("%s\n[... %d bytes left out ...]\n%s", b.head.String(), b.dropped, b.tail)
}
