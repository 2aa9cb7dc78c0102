// Package repo locates this repository and asks the go command about its
// environment, for the workflow commands and tests under tools/.
package repo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Root returns the top directory of the git checkout containing the
// working directory.
func Root() (string, error) {
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", fmt.Errorf("find the repository root (git rev-parse --show-toplevel): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// TestRoot is Root for tests: it fails tb when the root cannot be found.
func TestRoot(tb testing.TB) string {
	tb.Helper()
	root, err := Root()
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

// GoEnv returns `go env name`, or "" when the go command cannot tell.
func GoEnv(name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// ToolchainWork is the toolchain's workspace file, relative to the
// repository root. The root go.work is the workspace of the shipped modules
// (gen/go, services/greeter, clients/greetctl) and does not hold tools/, so
// every `go tool` run from the root selects this one through GOWORK.
const ToolchainWork = "tools/go.work"

// ToolCommand returns `go tool args...` to run in dir with the toolchain's
// workspace of the checkout that holds the working directory, whatever
// workspace dir itself belongs to (the root's, or none in a temporary copy
// of the repository).
func ToolCommand(ctx context.Context, dir string, args ...string) (*exec.Cmd, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"tool"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(root, filepath.FromSlash(ToolchainWork)))
	return cmd, nil
}
