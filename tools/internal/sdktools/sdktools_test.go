package sdktools_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme/greeter/tools/internal/repo"
	"github.com/acme/greeter/tools/internal/sdktools"
)

// TestCheck: the checkout has every tool (CI installs them; a developer
// machine that lacks one fails here with the line that says what to
// install), and a tree without `npm ci` is told to run it, in one line.
func TestCheck(t *testing.T) {
	t.Parallel()
	root := repo.TestRoot(t)
	if err := sdktools.Check(root); err != nil {
		t.Fatal(err)
	}
	bare := t.TempDir()
	if err := os.MkdirAll(filepath.Join(bare, ".ci"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, sdktools.AptPackagesFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bare, sdktools.AptPackagesFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	err = sdktools.Check(bare)
	if err == nil {
		t.Fatal("a tree without node_modules passed")
	}
	msg := err.Error()
	for _, want := range []string{sdktools.ProtocGenES, "make npm-deps"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message does not name %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("message is more than one line: %q", msg)
	}
}

func TestAptPackages(t *testing.T) {
	t.Parallel()
	packages, err := sdktools.AptPackages(repo.TestRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"protobuf-compiler", "protobuf-compiler-grpc", "python3-grpcio", "python3-protobuf"} {
		found := false
		for _, p := range packages {
			found = found || p == want
		}
		if !found {
			t.Errorf(".ci/apt-packages lacks %s: %q", want, packages)
		}
	}
}
