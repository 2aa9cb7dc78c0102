package cli_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme/greeter/clients/greetctl/internal/cli"
	"github.com/acme/greeter/clients/greetctl/internal/greettest"
	"github.com/acme/greeter/clients/greetctl/internal/version"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testBuild is the build information every test runs with, so that version
// output is stable.
var testBuild = version.Info{Version: "v1.2.3", Revision: "0123456789abcdef"}

// result is what one greetctl run produced.
type result struct {
	code           int
	stdout, stderr string
}

// String lays a result out for golden files.
func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// invocation is one greetctl command line.
type invocation struct {
	args  []string
	stdin string
	env   map[string]string
}

// run runs greetctl in-process. The environment is only inv.env, so that
// the developer's GREETCTL_* variables and config file cannot leak in.
func run(t *testing.T, inv invocation) result {
	t.Helper()
	return runContext(t, context.Background(), inv, strings.NewReader(inv.stdin), nil)
}

func runContext(t *testing.T, ctx context.Context, inv invocation, stdin io.Reader, stdout io.Writer) result {
	t.Helper()
	env := inv.env
	if env == nil {
		env = map[string]string{}
	}
	var out, errOut bytes.Buffer
	w := io.Writer(&out)
	if stdout != nil {
		w = stdout
	}
	code := cli.Main(ctx, inv.args, stdin, w, &errOut, cli.WithEnv(env), cli.WithBuild(testBuild))
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// golden compares got with testdata/name.golden, or rewrites it under
// -update.
func golden(t *testing.T, name string, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run go test -update to accept):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// addr returns the flags that reach s in plaintext.
func addr(s *greettest.Server) []string {
	return []string{"--addr", s.Addr}
}

func args(base []string, more ...string) []string {
	return append(append([]string(nil), base...), more...)
}

// TestGolden runs every command in every output format against a healthy
// server and compares exit status, stdout and stderr with golden files.
func TestGolden(t *testing.T) {
	s := greettest.Start(t, greettest.Options{Version: "v0.9.0 (feedface)"})
	a := addr(s)
	tests := []struct {
		name string
		inv  invocation
	}{
		// The root help: the flags, and the exit statuses from exitcode.Table.
		{"help", invocation{args: []string{"--help"}}},
		{"hello_text", invocation{args: args(a, "hello", "Ada")}},
		{"hello_json", invocation{args: args(a, "hello", "Ada", "-o", "json")}},
		{"hello_yaml", invocation{args: args(a, "hello", "Ada", "-o", "yaml")}},
		{"hello_again_text", invocation{args: args(a, "hello-again", "Ada")}},
		{"hello_again_json", invocation{args: args(a, "hello-again", "Ada", "-o", "json")}},
		{"hello_again_yaml", invocation{args: args(a, "hello-again", "Ada", "-o", "yaml")}},
		{"classic_hello", invocation{args: args(a, "--classic", "hello", "Ada")}},
		{"classic_hello_again_json", invocation{args: args(a, "hello-again", "--classic", "Ada", "-o", "json")}},
		{"stream_text", invocation{args: args(a, "stream", "Ada", "--count", "3")}},
		{"stream_json", invocation{args: args(a, "stream", "Ada", "-n", "3", "--interval", "1ms", "-o", "json")}},
		{"stream_yaml", invocation{args: args(a, "stream", "Ada", "-n", "2", "-o", "yaml")}},
		{"hello_all_args_text", invocation{args: args(a, "hello-all", "Ada", "Grace", "Linus")}},
		{"hello_all_one_text", invocation{args: args(a, "hello-all", "Ada")}},
		{"hello_all_stdin_json", invocation{args: args(a, "hello-all", "-o", "json"), stdin: "Ada\n\nGrace\r\nLinus"}},
		{"hello_all_dash_yaml", invocation{args: args(a, "hello-all", "-", "-o", "yaml"), stdin: "Ada\nGrace\n"}},
		{"chat_text", invocation{args: args(a, "chat"), stdin: "Ada\nGrace\n\nLinus\n"}},
		{"chat_json", invocation{args: args(a, "chat", "-o", "json"), stdin: "Ada\nGrace\n"}},
		{"chat_yaml", invocation{args: args(a, "chat", "-o", "yaml"), stdin: "Ada\nGrace\n"}},
		{"health_text", invocation{args: args(a, "health")}},
		{"health_service_json", invocation{args: args(a, "health", "acme.greeter.v1.GreeterService", "-o", "json")}},
		{"health_yaml", invocation{args: args(a, "health", "helloworld.Greeter", "-o", "yaml")}},
		{"health_unknown_service", invocation{args: args(a, "health", "no.such.Service")}},
		{"version_text", invocation{args: []string{"version"}}},
		{"version_json", invocation{args: []string{"version", "-o", "json"}}},
		{"version_server_text", invocation{args: args(a, "version", "--server")}},
		{"version_server_json", invocation{args: args(a, "version", "--server", "-o", "json")}},
		{"version_server_yaml", invocation{args: args(a, "version", "--server", "-o", "yaml")}},
		// Errors, rendered with every status detail.
		{"error_bad_request", invocation{args: args(a, "hello", "   ")}},
		{"error_details", invocation{args: args(a, "hello", greettest.Details)}},
		{"error_stream_bad_count", invocation{args: args(a, "stream", "Ada", "--count", "0")}},
		{"error_hello_all_bad_name", invocation{args: args(a, "hello-all", "Ada", " ")}},
		{"error_hello_all_no_names", invocation{args: args(a, "hello-all"), stdin: "\n"}},
		{"error_chat_bad_name", invocation{args: args(a, "chat"), stdin: "Ada\n \t\nGrace\n"}},
		{"error_classic_stream", invocation{args: args(a, "--classic", "stream", "Ada")}},
		{"error_classic_chat", invocation{args: args(a, "--classic", "chat")}},
		{"error_classic_hello_all", invocation{args: args(a, "--classic", "hello-all", "Ada")}},
		// Usage errors.
		{"usage_no_name", invocation{args: args(a, "hello")}},
		{"usage_unknown_flag", invocation{args: args(a, "hello", "--nope", "Ada")}},
		{"usage_unknown_command", invocation{args: []string{"bonjour"}}},
		{"usage_bad_output", invocation{args: args(a, "hello", "Ada", "-o", "xml")}},
		{"usage_bad_header", invocation{args: args(a, "hello", "Ada", "-H", "no-colon")}},
		{"usage_reserved_header", invocation{args: args(a, "hello", "Ada", "-H", "grpc-timeout: 1S")}},
		{"usage_bad_addr", invocation{args: []string{"hello", "Ada", "--addr", "localhost"}}},
		{"usage_bad_replica", invocation{args: []string{"hello", "Ada", "--addr", "127.0.0.1:1,nope"}}},
		{"usage_plaintext_and_tls", invocation{args: args(a, "hello", "Ada", "--plaintext", "--tls")}},
		{"usage_cert_without_key", invocation{args: args(a, "hello", "Ada", "--cert", "client.pem")}},
		{"usage_negative_timeout", invocation{args: args(a, "hello", "Ada", "--timeout", "-1s")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			golden(t, tt.name, run(t, tt.inv).String())
		})
	}
}
