// Package reliability holds the helpers of the process-level fault tests
// (issue 7, "nothing lost, nobody in"): a greeter process whose whole log
// goes to a file, a reader of its Prometheus metrics, a TCP proxy that can
// turn into a black hole (a peer that is gone without closing anything),
// the sockets a process listens on, and a throwaway PKI for the TLS tests.
// The tests themselves are in reliability_test.go and friends; see
// docs/reliability.md.
package reliability

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Proc is a greeter process whose standard error (the log) is written to a
// file in full, for tests that count access-log lines.
type Proc struct {
	Addr, MetricsAddr string

	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

var addrPattern = regexp.MustCompile(`(grpc_addr|metrics_addr)"?[=:]"?([^\s",]*)`)

// Start runs bin with args after `--grpc-addr 127.0.0.1:0 --metrics-addr ""`
// (args may override both), logging to logPath, and waits for its
// "serving" line — or, when args give a fixed --grpc-addr, until that
// address accepts connections (then MetricsAddr is --metrics-addr as
// given, which must be fixed too).
func Start(ctx context.Context, bin, logPath string, args ...string) (*Proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p := &Proc{logPath: logPath, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"--grpc-addr", "127.0.0.1:0", "--metrics-addr", ""}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	fixedGRPC, fixedMetrics := flagValue(args, "--grpc-addr"), flagValue(args, "--metrics-addr")
	deadline := time.Now().Add(30 * time.Second)
	for {
		log := p.Log()
		if _, port, _ := net.SplitHostPort(fixedGRPC); port != "" && port != "0" {
			// A log level above info hides the "serving" line: a fixed
			// address is ready when it accepts connections.
			if c, err := net.DialTimeout("tcp", fixedGRPC, time.Second); err == nil {
				c.Close()
				p.Addr, p.MetricsAddr = fixedGRPC, fixedMetrics
				return p, nil
			}
		}
		if strings.Contains(log, "serving") {
			for _, m := range addrPattern.FindAllStringSubmatch(log, -1) {
				if m[1] == "grpc_addr" && p.Addr == "" {
					p.Addr = m[2]
				}
				if m[1] == "metrics_addr" && p.MetricsAddr == "" {
					p.MetricsAddr = m[2]
				}
			}
			if p.Addr != "" {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited before serving (%v):\n%s", bin, p.err, log)
		case <-ctx.Done():
			p.Kill()
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("%s did not start serving:\n%s", bin, log)
		}
	}
}

// flagValue is the last value of flag name in args, or "".
func flagValue(args []string, name string) string {
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Log is everything the process has logged so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// Pid is the process ID.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Signal sends sig.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits at most timeout for the process to exit and returns its exit
// code (-1 if killed by a signal).
func (p *Proc) Wait(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), nil
	case <-time.After(timeout):
		return 0, fmt.Errorf("process %d did not exit within %s", p.Pid(), timeout)
	}
}

// Kill ends the process at once and waits for it.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Metrics is one scrape of a Prometheus text exposition: series (the name
// and labels as printed) to value.
type Metrics map[string]float64

// Scrape reads http://addr/metrics.
func Scrape(ctx context.Context, addr string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	m := Metrics{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// Sum adds the samples of metric name whose labels include every one of
// labels (`key="value"` as printed).
func (m Metrics) Sum(name string, labels ...string) float64 {
	var sum float64
	for series, v := range m {
		base, rest, _ := strings.Cut(series, "{")
		if base != name {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(rest, l)
		}
		if ok {
			sum += v
		}
	}
	return sum
}

// ListeningPorts lists the TCP ports process pid listens on, from the
// socket inodes of /proc/<pid>/fd matched against /proc/net/tcp{,6}.
func ListeningPorts(pid int) ([]int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err != nil {
			continue
		}
		if ino, ok := strings.CutPrefix(target, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	var ports []int
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// local_address rem_address st ... inode (field 9)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			_, portHex, _ := strings.Cut(f[1], ":")
			port, err := strconv.ParseUint(portHex, 16, 16)
			if err == nil {
				ports = append(ports, int(port))
			}
		}
	}
	return ports, nil
}

// Proxy forwards TCP connections to a target until Blackhole is called;
// from then on it forwards nothing in either direction and closes nothing,
// so the peers see a connection that is open but silent: a client whose
// machine died, or a network partition.
type Proxy struct {
	Addr   string
	lis    net.Listener
	target string
	dark   atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

// NewProxy listens on loopback and forwards to target.
func NewProxy(target string) (*Proxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: lis.Addr().String(), lis: lis, target: target}
	go p.serve()
	return p, nil
}

func (p *Proxy) serve() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.pipe(s, c)
		go p.pipe(c, s)
	}
}

// pipe copies from src to dst until the black hole, then swallows what src
// sends (so neither side sees an error or a close).
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.dark.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil && !p.dark.Load() {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Blackhole stops forwarding, silently.
func (p *Proxy) Blackhole() { p.dark.Store(true) }

// Reset closes every connection with a TCP RST (SO_LINGER 0), as the
// kernel does for a killed process that left data unread: no GOAWAY, no
// orderly close.
func (p *Proxy) Reset() {
	p.dark.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
}

// Close closes the listener and every connection.
func (p *Proxy) Close() {
	p.lis.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// PKI is a throwaway certificate authority with PEM files in a directory.
type PKI struct {
	Dir    string
	CA     string // CA certificate file
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

// NewPKI creates a CA named cn in dir.
func NewPKI(dir, cn string) (*PKI, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	p := &PKI{Dir: dir, CA: filepath.Join(dir, safe(cn)+"-ca.pem"), caCert: cert, caKey: key}
	return p, writePEM(p.CA, "CERTIFICATE", der)
}

func safe(s string) string { return strings.ReplaceAll(s, " ", "_") }

// Issue signs a certificate for cn (a server certificate for localhost and
// 127.0.0.1 if server) and returns its certificate and key files.
func (p *PKI) Issue(cn string, server bool) (certFile, keyFile string, err error) {
	return issue(p.Dir, cn, server, p.caCert, p.caKey)
}

// SelfSigned returns a certificate for cn signed by its own key.
func SelfSigned(dir, cn string) (certFile, keyFile string, err error) {
	return issue(dir, cn, false, nil, nil)
}

func issue(dir, cn string, server bool, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	parent, signer := ca, caKey
	if ca == nil {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile := filepath.Join(dir, safe(cn)+".pem"), filepath.Join(dir, safe(cn)+"-key.pem")
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return "", "", err
	}
	return certFile, keyFile, writePEM(keyFile, "PRIVATE KEY", keyDER)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// ExitCode is the exit code of a finished command's error: 0 for nil.
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

// LineBuffer keeps the complete lines written to it, safe for a child
// process's output and a test reading it at the same time.
type LineBuffer struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
}

var _ io.Writer = (*LineBuffer)(nil)

// Write keeps complete lines.
func (l *LineBuffer) Write(p []byte) (int, error) {
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
func (l *LineBuffer) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}
