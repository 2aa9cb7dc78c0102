package sdk_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/acme/greeter/test/harness/binaries"
	"github.com/acme/greeter/test/harness/process"
	"github.com/acme/greeter/test/harness/repo"
)

// Built once for the package's tests: the greeter binary, the contract's
// artifacts (`go tool contractdist`, what `make dist` runs, into a
// temporary directory, so no test reads a stale dist/), and the
// descriptors of google.rpc's error details for the clients to decode
// BadRequest with.
var (
	greeterBin   string
	dist         string
	errorDetails string
	root         string
)

func TestMain(m *testing.M) {
	os.Exit(binaries.Main(m, func(paths []string) error {
		greeterBin = paths[0]
		var err error
		if root, err = repo.Root(); err != nil {
			return err
		}
		work := filepath.Dir(greeterBin)
		dist = filepath.Join(work, "dist")
		build, err := repo.ToolCommand(context.Background(), root, "contractdist", "-out", dist)
		if err != nil {
			return err
		}
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build the contract's artifacts (go tool contractdist): %v\n%s", err, out)
		}
		errorDetails = filepath.Join(work, "error_details.binpb")
		return writeErrorDetails(errorDetails)
	}, binaries.Greeter))
}

// writeErrorDetails writes a FileDescriptorSet of google/rpc/status.proto
// and error_details.proto with their imports, in dependency order.
func writeErrorDetails(path string) error {
	set := &descriptorpb.FileDescriptorSet{}
	for _, f := range []protoreflect.FileDescriptor{
		anypb.File_google_protobuf_any_proto,
		durationpb.File_google_protobuf_duration_proto,
		status.File_google_rpc_status_proto,
		errdetails.File_google_rpc_error_details_proto,
	} {
		set.File = append(set.File, protodesc.ToFileDescriptorProto(f))
	}
	data, err := proto.Marshal(set)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// startGreeter runs the real greeter on a loopback port for one test.
func startGreeter(t *testing.T) *process.Server {
	t.Helper()
	srv, err := process.Start(context.Background(), greeterBin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(10 * time.Second); err != nil {
			t.Errorf("greeter did not drain cleanly: %v\n%s", err, srv.Log())
		}
	})
	return srv
}

// need fails the test, in one line naming what to install, when a tool it
// runs is missing. These tests never skip: .ci/run installs everything.
func need(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s is missing: install Node.js 20 with npm, and on Debian `sudo apt-get install -y --no-install-recommends %s` (.ci/run does)", p, aptPackages(t))
		}
	}
}

// aptPackages is what .ci/run installs for these tests: .ci/apt-packages.
func aptPackages(t *testing.T) string {
	data, err := os.ReadFile(filepath.Join(root, ".ci", "apt-packages"))
	if err != nil {
		t.Fatal(err)
	}
	var packages []string
	for _, line := range strings.Split(string(data), "\n") {
		if line, _, _ = strings.Cut(line, "#"); strings.TrimSpace(line) != "" {
			packages = append(packages, strings.TrimSpace(line))
		}
	}
	return strings.Join(packages, " ")
}

// artifact is the one file of dist matching pattern (a glob relative to it).
func artifact(t *testing.T, pattern string) string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dist, pattern))
	if err != nil || len(matches) != 1 {
		t.Fatalf("want exactly one %s in %s, got %q (%v)", pattern, dist, matches, err)
	}
	return matches[0]
}

// runIn runs name args in dir with env added to the environment and
// returns its standard output; a failure reports everything it printed.
func runIn(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s (in %s): %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), dir, err, out, stderr.String())
	}
	return string(out)
}

// copyFiles copies names from the directory src into dst.
func copyFiles(t *testing.T, src, dst string, names ...string) {
	t.Helper()
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
