// Package serverproc runs a greeter server binary as a child process on a
// loopback port chosen by the kernel, for tests and benchmarks that need the
// real process: release checks, load, drain and scaling tests.
package serverproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server is a running greeter process.
type Server struct {
	// Addr is the gRPC address the server bound, e.g. 127.0.0.1:43121.
	Addr string
	// MetricsAddr is the bound admin HTTP address, or "" when disabled.
	MetricsAddr string

	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{}
	err  error
}

// addrPattern finds the bound addresses in the server's "serving" log line,
// in the text or the JSON log format.
var addrPattern = regexp.MustCompile(`(grpc_addr|metrics_addr)"?[=:]"?([^\s",]*)`)

// Start runs bin with args plus `--grpc-addr 127.0.0.1:0` and waits until
// the server logs the addresses it bound (at most startTimeout). Pass
// `--metrics-addr 127.0.0.1:0` in args to get the admin server too; it is
// disabled otherwise. A caller that passes its own `--grpc-addr HOST:PORT`
// (for a log level that hides the start-up line, say) gets that address
// once it accepts connections.
func Start(ctx context.Context, bin string, args ...string) (*Server, error) {
	const startTimeout = 30 * time.Second
	fixed := fixedAddr(args)
	args = append([]string{"--grpc-addr", "127.0.0.1:0", "--metrics-addr", ""}, args...)
	s := &Server{log: &lockedBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, m := range addrPattern.FindAllStringSubmatch(s.log.String(), -1) {
			if m[1] == "grpc_addr" && s.Addr == "" {
				s.Addr = m[2]
			}
			if m[1] == "metrics_addr" && s.MetricsAddr == "" {
				s.MetricsAddr = m[2]
			}
		}
		if fixed != "" {
			if c, err := net.DialTimeout("tcp", fixed, time.Second); err == nil {
				c.Close()
				s.Addr = fixed
			}
		}
		if s.Addr != "" {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("%s exited before serving (%v):\n%s", bin, s.err, s.log)
		case <-ctx.Done():
			s.Kill()
			return nil, ctx.Err()
		case <-deadline.C:
			s.Kill()
			return nil, fmt.Errorf("%s did not log its address within %s:\n%s", bin, startTimeout, s.log)
		case <-tick.C:
		}
	}
}

// fixedAddr returns the value of a --grpc-addr flag in args with a port
// other than 0, or "".
func fixedAddr(args []string) string {
	for i, a := range args {
		v, ok := strings.CutPrefix(a, "--grpc-addr=")
		if !ok && a == "--grpc-addr" && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		if ok {
			if _, port, err := net.SplitHostPort(v); err == nil && port != "0" {
				return v
			}
		}
	}
	return ""
}

// Stop sends SIGTERM, the orchestrator's way to ask for a drain, and waits
// for the process to exit (at most timeout, then it is killed). It returns
// the process's exit error: nil for exit status 0.
func (s *Server) Stop(timeout time.Duration) error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
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

// Kill ends the process at once (SIGKILL) and waits for it.
func (s *Server) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Pid is the process ID.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Log is everything the server printed so far.
func (s *Server) Log() string { return s.log.String() }

// Done is closed when the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// logKeep bounds what is kept of the server's output: its first logKeep
// bytes (start-up, the bound addresses) and its last logKeep bytes (the
// drain), so a server logging every RPC under load cannot grow the caller.
const logKeep = 64 << 10

// lockedBuffer keeps the head and the tail of what is written to it.
type lockedBuffer struct {
	mu      sync.Mutex
	head    bytes.Buffer
	tail    []byte
	dropped int64
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
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

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped == 0 {
		return b.head.String() + string(b.tail)
	}
	return fmt.Sprintf("%s\n[... %d bytes left out ...]\n%s", b.head.String(), b.dropped, b.tail)
}
