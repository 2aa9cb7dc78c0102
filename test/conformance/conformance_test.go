package conformance

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acme/greeter/test/harness/binaries"
)

// ServerFlags are the greeter flags the conformance server runs with, as a
// deployment would set them:
//
//   - --max-connections-per-client 512 (0 derives 128 from the default
//     memory limit): every call of the suite comes from 127.0.0.1, and its
//     gRPC reference client opens a connection for each case and keeps it
//     to the end of the run, about 180 on one server;
//   - --log-level error: the suite's cases end in every error code on
//     purpose; the access log of each is noise here.
//
// Everything else is the greeter's default: admission, the first-message
// and send-stall timeouts, the rate limit (off), the message size (the
// runner's receive limit replaces it where it sets one).
var ServerFlags = []string{"--max-connections-per-client", "512", "--log-level", "error"}

// conformanceServer and runner are the binaries TestMain builds.
var conformanceServer, runner string

var (
	// ConformanceServer is the server under test, a main package of the
	// server's module.
	ConformanceServer = binaries.Command{Name: "conformanceserver", Module: "services/greeter", Package: "./internal/conformance/cmd/conformanceserver"}
	// Runner is connectrpc's conformance runner at the version go.mod pins
	// as a tool.
	Runner = binaries.Command{Name: "connectconformance", Module: "test", Package: "connectrpc.com/conformance/cmd/connectconformance"}
)

func TestMain(m *testing.M) {
	os.Exit(binaries.Main(m, func(paths []string) error {
		conformanceServer, runner = paths[0], paths[1]
		return nil
	}, ConformanceServer, Runner))
}

// summary is the runner's count, and its note of known failures.
var (
	summary      = regexp.MustCompile(`(?m)^(\d+) passed, (\d+) failed$`)
	knownSummary = regexp.MustCompile(`(?m)^\(Another \d+ failed as expected.*$`)
)

// runTimeout bounds one port's run; it takes about a minute.
const runTimeout = 10 * time.Minute

func TestConformance(t *testing.T) {
	for _, tt := range []struct {
		port, config string
		// knownFailing, if set, is a file of test cases that must fail
		// (see its comments).
		knownFailing string
	}{
		{port: "http", config: "http.yaml"},
		{port: "grpc", config: "grpc.yaml", knownFailing: "grpc-known-failing.txt"},
	} {
		t.Run(tt.port, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
			defer cancel()
			args := []string{"--mode", "server", "--conf", tt.config}
			if tt.knownFailing != "" {
				args = append(args, "--known-failing", "@"+tt.knownFailing)
			}
			args = append(append(args, "--", conformanceServer, "-port", tt.port, "--"), ServerFlags...)
			cmd := exec.CommandContext(ctx, runner, args...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			err := cmd.Run()
			m := summary.FindAllStringSubmatch(out.String(), -1)
			if len(m) == 0 {
				t.Fatalf("connectconformance %s: %v; no summary in its output:\n%s", strings.Join(args, " "), err, tail(out.String(), 4000))
			}
			last := m[len(m)-1]
			passed, _ := strconv.Atoi(last[1])
			failed, _ := strconv.Atoi(last[2])
			t.Logf("%s port (%s): %s %s (%v)", tt.port, tt.config, last[0], knownSummary.FindString(out.String()), time.Since(start).Round(time.Second))
			if err != nil || failed != 0 || passed == 0 {
				t.Errorf("connectconformance %s: %v; %s:\n%s", strings.Join(args, " "), err, last[0], tail(out.String(), 20000))
			}
		})
	}
}

// tail is the end of s, at most n bytes.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}
