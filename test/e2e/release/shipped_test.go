package release_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acme/greeter/test/harness/buildlist"
	"github.com/acme/greeter/test/harness/repo"
)

// shipped is a released module: a library (main "") or a command.
type shipped struct {
	dir  string // module directory, also its tag prefix
	main string // main package, relative to dir
}

var shippedModules = []shipped{
	{dir: "gen/go"},
	{dir: "services/greeter", main: "./cmd/greeter"},
	{dir: "clients/greetctl", main: "./cmd/greetctl"},
}

// TestShippedIsTested proves, for every shipped module, that what ships and
// what is tested link the same dependency versions as the module's own
// go.mod and go.sum select outside any workspace: the binaries of
// `make build` (which `make demo` runs), the release build of
// release-binary.yml (GOWORK=off, gen/go published), and every package the
// module's tests link, as `make test` resolves them in the root workspace
// (test binaries record no dependencies, so `go list -deps -test` says). (The Docker image's builder stage is
// checked the same way by test/deploycheck.) A module whose workspace raised
// a version, as the old shared go.work did with buf's pre-release protobuf,
// fails here naming the module and both versions.
func TestShippedIsTested(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every shipped binary and a test binary per module")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root := repo.TestRoot(t)
	bin := t.TempDir()
	run(ctx, t, root, "make", "--no-print-directory", "build", "BIN="+bin)
	for _, m := range shippedModules {
		t.Run(m.dir, func(t *testing.T) {
			own, err := buildlist.Own(ctx, root, m.dir)
			if err != nil {
				t.Fatal(err)
			}
			diffs, err := buildlist.TestMismatches(ctx, filepath.Join(root, m.dir), own)
			if err != nil {
				t.Fatal(err)
			}
			report(t, "go test ./...", m.dir, diffs)
			artifacts := map[string]string{}
			if m.main != "" {
				name := filepath.Base(m.main)
				artifacts["make build: bin/"+name] = filepath.Join(bin, name)
				release := filepath.Join(t.TempDir(), name)
				runTool(ctx, t, root, "modproxy", "exec", m.dir,
					"go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", release, m.main)
				artifacts["release build (GOWORK=off)"] = release
			}
			for what, path := range artifacts {
				diffs, err := buildlist.Mismatches(path, own)
				if err != nil {
					t.Fatal(err)
				}
				report(t, what, m.dir, diffs)
			}
		})
	}
}

// report fails the test with diffs, what's differences from dir's own
// build list, or logs that there are none.
func report(t *testing.T, what, dir string, diffs []string) {
	t.Helper()
	if len(diffs) > 0 {
		t.Errorf("%s links other versions than %s/go.mod selects:\n  %s", what, dir, strings.Join(diffs, "\n  "))
		return
	}
	t.Logf("%s: every dependency at the version of %s/go.mod", what, dir)
}

// TestStandaloneModules builds each consumer of gen/go outside any
// workspace, with exactly its committed go.mod and go.sum, against gen/go
// served by a proxy (what a user who `go install`s it gets), and loads
// every test dependency too, so a go.sum that misses a line fails here.
func TestStandaloneModules(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two modules outside the workspace")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root := repo.TestRoot(t)
	for _, m := range shippedModules {
		if m.main == "" {
			continue // gen/go requires nothing of this repository
		}
		t.Run(m.dir, func(t *testing.T) {
			runTool(ctx, t, root, "modproxy", "exec", m.dir, "go", "build", "-trimpath", "./...")
			runTool(ctx, t, root, "modproxy", "exec", m.dir, "go", "list", "-test", "-deps", "./...")
		})
	}
}

// run runs a command in dir and fails the test with its output if it fails.
func run(ctx context.Context, t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// runTool runs `go tool args...` in dir with the toolchain's workspace and
// fails the test with its output if it fails.
func runTool(ctx context.Context, t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd, err := repo.ToolCommand(ctx, dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go tool %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
}
