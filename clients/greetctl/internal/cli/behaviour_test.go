package cli_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/acme/greeter/clients/greetctl/internal/exitcode"
	"github.com/acme/greeter/clients/greetctl/internal/greettest"
)

// TestExitCodes checks the exit status of every status class.
func TestExitCodes(t *testing.T) {
	s := greettest.Start(t, greettest.Options{})
	tests := []struct {
		code string
		want int
	}{
		{"InvalidArgument", exitcode.Rejected},
		{"OutOfRange", exitcode.Rejected},
		{"FailedPrecondition", exitcode.Rejected},
		{"AlreadyExists", exitcode.Rejected},
		{"NotFound", exitcode.Rejected},
		{"Unavailable", exitcode.Unavailable},
		{"DeadlineExceeded", exitcode.DeadlineExceeded},
		{"Unauthenticated", exitcode.Auth},
		{"PermissionDenied", exitcode.Auth},
		{"ResourceExhausted", exitcode.ResourceExhausted},
		{"Internal", exitcode.ServerError},
		{"Unknown", exitcode.ServerError},
		{"DataLoss", exitcode.ServerError},
		{"Unimplemented", exitcode.ServerError},
		{"Aborted", exitcode.ServerError},
		{"Canceled", exitcode.Interrupted},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			// --no-retry: Unavailable would otherwise be retried.
			r := run(t, invocation{args: args(addr(s), "--no-retry", "hello", greettest.CodePrefix+tt.code)})
			if r.code != tt.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.code, tt.want, r.stderr)
			}
			if want := "greetctl hello: " + tt.code + ": "; !strings.HasPrefix(r.stderr, want) {
				t.Errorf("stderr %q, want prefix %q", r.stderr, want)
			}
			if strings.Contains(r.stderr, "goroutine") || strings.Contains(r.stderr, ".go:") {
				t.Errorf("stderr looks like a stack trace:\n%s", r.stderr)
			}
		})
	}
}

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

func TestDeadlineExceeded(t *testing.T) {
	s := greettest.Start(t, greettest.Options{})
	// 10 greetings 1s apart cannot finish in 50ms; the first arrives at once.
	r := run(t, invocation{args: args(addr(s), "stream", "Ada", "-n", "10", "--interval", "1s", "--timeout", "50ms")})
	if r.code != exitcode.DeadlineExceeded {
		t.Fatalf("got %v, want exit 5", r)
	}
	if !strings.Contains(r.stderr, "received 1 of 10 greetings") || !strings.Contains(r.stderr, "DeadlineExceeded") {
		t.Errorf("stderr %q lacks the count or the code", r.stderr)
	}
}

// TestHeadersReachServer checks -H, --user-agent and the environment and
// config file forms of both.
func TestHeadersReachServer(t *testing.T) {
	tests := []struct {
		name      string
		inv       func(dir string) invocation
		want      map[string][]string
		userAgent string
	}{
		{
			name: "flags",
			inv: func(string) invocation {
				return invocation{args: []string{"hello", "Ada", "-H", "X-Team: greeter", "-H", "x-team:core", "--header=auth-token:  s3cret ", "--user-agent", "probe/1"}}
			},
			want:      map[string][]string{"x-team": {"greeter", "core"}, "auth-token": {"s3cret"}},
			userAgent: "probe/1",
		},
		{
			name: "environment",
			inv: func(string) invocation {
				return invocation{args: []string{"hello", "Ada"}, env: map[string]string{"GREETCTL_HEADER": "x-team: env", "GREETCTL_USER_AGENT": "env-agent/2"}}
			},
			want:      map[string][]string{"x-team": {"env"}},
			userAgent: "env-agent/2",
		},
		{
			name: "config file",
			inv: func(dir string) invocation {
				path := writeFile(t, dir, "config.yaml", "header:\n  - 'x-team: file'\n  - 'x-env: prod'\nuser-agent: file-agent/3\n")
				return invocation{args: []string{"hello", "Ada", "--config", path}}
			},
			want:      map[string][]string{"x-team": {"file"}, "x-env": {"prod"}},
			userAgent: "file-agent/3",
		},
		{
			name: "default",
			inv: func(string) invocation {
				return invocation{args: []string{"hello", "Ada"}}
			},
			userAgent: "greetctl/v1.2.3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := greettest.Start(t, greettest.Options{})
			inv := tt.inv(t.TempDir())
			inv.args = append(addr(s), inv.args...)
			if r := run(t, inv); r.code != 0 {
				t.Fatalf("got %v", r)
			}
			mds := s.Metadata()
			if len(mds) != 1 {
				t.Fatalf("server saw %d calls, want 1", len(mds))
			}
			md := mds[0]
			for k, want := range tt.want {
				if got := md.Get(k); strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if ua := strings.Join(md.Get("user-agent"), " "); !strings.HasPrefix(ua, tt.userAgent+" grpc-go/") {
				t.Errorf("user-agent %q, want prefix %q", ua, tt.userAgent)
			}
		})
	}
}

// TestConfigPrecedence checks that a flag wins over the environment and the
// environment over the config file, and that the default config file is
// found under XDG_CONFIG_HOME.
func TestConfigPrecedence(t *testing.T) {
	s := greettest.Start(t, greettest.Options{})
	const nowhere = "127.0.0.1:1"
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		file     string // Contents of $XDG_CONFIG_HOME/greetctl/config.yaml.
		wantCode int
	}{
		{"flag beats environment", []string{"--addr", s.Addr}, map[string]string{"GREETCTL_ADDR": nowhere}, "", 0},
		{"environment beats file", nil, map[string]string{"GREETCTL_ADDR": s.Addr}, "addr: " + nowhere + "\n", 0},
		{"file beats default", nil, nil, "addr: " + s.Addr + "\nno-retry: true\ntimeout: 5s\n", 0},
		{"flag beats file", []string{"--addr", s.Addr}, nil, "addr: " + nowhere + "\n", 0},
		{"file for a flag of another command", []string{"--addr", s.Addr}, nil, "count: 5\nwatch: true\n", 0},
		{"environment is used", nil, map[string]string{"GREETCTL_ADDR": nowhere, "GREETCTL_NO_RETRY": "true"}, "", exitcode.Unavailable},
		{"bad environment value", []string{"--addr", s.Addr}, map[string]string{"GREETCTL_TIMEOUT": "soon"}, "", exitcode.Usage},
		{"unknown key", []string{"--addr", s.Addr}, nil, "adress: " + s.Addr + "\n", exitcode.Usage},
		{"bad value", []string{"--addr", s.Addr}, nil, "timeout: [1s, 2s]\n", exitcode.Usage},
		{"bad YAML", []string{"--addr", s.Addr}, nil, "addr: [\n", exitcode.Usage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xdg := t.TempDir()
			env := map[string]string{"XDG_CONFIG_HOME": xdg}
			for k, v := range tt.env {
				env[k] = v
			}
			if tt.file != "" {
				writeFile(t, filepath.Join(xdg, "greetctl"), "config.yaml", tt.file)
			}
			r := run(t, invocation{args: append(tt.args, "hello", "Ada"), env: env})
			if r.code != tt.wantCode {
				t.Errorf("got %v, want exit %d", r, tt.wantCode)
			}
		})
	}
}

// TestCommandFlagsFromConfig checks that a command's own flags come from
// the environment and the config file too.
func TestCommandFlagsFromConfig(t *testing.T) {
	s := greettest.Start(t, greettest.Options{})
	path := writeFile(t, t.TempDir(), "config.yaml", "count: 2\noutput: json\n")
	tests := []struct {
		name  string
		inv   invocation
		lines int
	}{
		{"file", invocation{args: args(addr(s), "--config", path, "stream", "Ada")}, 2},
		{"environment over file", invocation{args: args(addr(s), "--config", path, "stream", "Ada"), env: map[string]string{"GREETCTL_COUNT": "1"}}, 1},
		{"flag over environment", invocation{args: args(addr(s), "--config", path, "stream", "Ada", "-n", "4"), env: map[string]string{"GREETCTL_COUNT": "1"}}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.inv)
			if r.code != 0 || strings.Count(r.stdout, `{"message":"Hello, Ada!"`) != tt.lines {
				t.Errorf("got %v, want %d JSON lines", r, tt.lines)
			}
		})
	}
}

func TestMissingConfigFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	for name, inv := range map[string]invocation{
		"flag":        {args: []string{"--config", missing, "version"}},
		"environment": {args: []string{"version"}, env: map[string]string{"GREETCTL_CONFIG": missing}},
	} {
		t.Run(name, func(t *testing.T) {
			r := run(t, inv)
			if r.code != exitcode.Usage || !strings.Contains(r.stderr, "nope.yaml") {
				t.Errorf("got %v, want exit 2 naming the file", r)
			}
		})
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

func TestVersionServerWithoutHeader(t *testing.T) {
	s := greettest.Start(t, greettest.Options{})
	r := run(t, invocation{args: args(addr(s), "version", "--server")})
	if r.code != 0 || !strings.Contains(r.stdout, "server: unknown (the server sent no greeter-server-version header)") {
		t.Errorf("got %v", r)
	}
}

func TestVerbose(t *testing.T) {
	s := greettest.Start(t, greettest.Options{})
	tests := []struct {
		name string
		inv  invocation
		want []string
	}{
		{"unary", invocation{args: args(addr(s), "-v", "-H", "x-trace: 1", "hello", "Ada")}, []string{
			"> /acme.greeter.v1.GreeterService/SayHello\n", "> x-trace: 1\n", "< header content-type: application/grpc\n", "< OK in ",
		}},
		{"server stream", invocation{args: args(addr(s), "-v", "stream", "Ada", "-n", "2")}, []string{
			"> /acme.greeter.v1.GreeterService/SayHelloStream\n", "< header content-type: application/grpc\n", "< OK after 2 messages in ",
		}},
		{"client stream", invocation{args: args(addr(s), "-v", "hello-all", "Ada")}, []string{
			"> /acme.greeter.v1.GreeterService/SayHelloToAll\n", "< OK after 1 messages in ",
		}},
		{"failure", invocation{args: args(addr(s), "-v", "hello", " ")}, []string{
			"< InvalidArgument in ",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.inv)
			for _, want := range tt.want {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
				}
			}
		})
	}
}

func TestCompletionAndHelp(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"completion", "bash"}, "bash completion"},
		{[]string{"completion", "zsh"}, "compdef"},
		{[]string{"--help"}, "130  interrupted"},
		{[]string{"stream", "--help"}, "--interval duration"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := run(t, invocation{args: tt.args})
			if r.code != 0 || !strings.Contains(r.stdout, tt.want) {
				t.Errorf("exit %d, stdout lacks %q; stderr %q", r.code, tt.want, r.stderr)
			}
		})
	}
}

var (
	flagMention = regexp.MustCompile(`--[a-z][a-z0-9-]*`)
	flagLine    = regexp.MustCompile(`(?m)^\s+(?:-[a-zA-Z], )?--([a-z][a-z0-9-]*)`)
	commandLine = regexp.MustCompile(`(?m)^  ([a-z][a-z-]*) +\S`)
)

// TestHelpNamesOnlyFlags reads the help of every command: each --flag it
// mentions, in descriptions and examples alike, is a flag of some command,
// so a renamed flag cannot stay behind in the prose.
func TestHelpNamesOnlyFlags(t *testing.T) {
	root := run(t, invocation{args: []string{"--help"}})
	_, commands, _ := strings.Cut(root.stdout, "Available Commands:\n")
	commands, _, _ = strings.Cut(commands, "\n\n")
	helps := map[string]string{"greetctl": root.stdout}
	for _, m := range commandLine.FindAllStringSubmatch(commands, -1) {
		helps[m[1]] = run(t, invocation{args: []string{m[1], "--help"}}).stdout
	}
	if len(helps) < 8 {
		t.Fatalf("found the help of %d commands, want every command:\n%s", len(helps), root.stdout)
	}
	flags := map[string]bool{}
	for _, help := range helps {
		for _, m := range flagLine.FindAllStringSubmatch(help, -1) {
			flags[m[1]] = true
		}
	}
	for cmd, help := range helps {
		for _, m := range flagMention.FindAllString(help, -1) {
			if !flags[strings.TrimPrefix(m, "--")] {
				t.Errorf("help of %s mentions %s, which is not a flag", cmd, m)
			}
		}
	}
}

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
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
