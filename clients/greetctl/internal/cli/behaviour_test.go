package cli_test

import (
	"regexp"
	"strings"
	"testing"

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
