package release_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acme/greeter/test/harness/buildlist"
	"github.com/acme/greeter/test/harness/repo"
)

// TestShippedIsTestedSeesDrift plants the drift TestShippedIsTested exists
// to catch, in a copy of the shipped workspace: clients/greetctl requires a
// newer golang.org/x/net than services/greeter does, and `make tidy` (go
// work sync) has not run. Built in the workspace, the server then links the
// client's version, which its own go.mod does not select; the check must
// name the module and both versions. Without the planted requirement the
// same copy must pass, so the failure is the drift's and not the copy's.
func TestShippedIsTestedSeesDrift(t *testing.T) {
	if testing.Short() {
		t.Skip("resolves the shipped workspace twice")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root := repo.TestRoot(t)
	own, err := buildlist.Own(ctx, root, "services/greeter")
	if err != nil {
		t.Fatal(err)
	}
	copyDir := copyShippedWorkspace(t, root)
	server := filepath.Join(copyDir, "services/greeter")

	diffs, err := buildlist.TestMismatches(ctx, server, own)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Fatalf("the unplanted copy already differs from services/greeter/go.mod:\n%s", strings.Join(diffs, "\n"))
	}

	// What test/go.mod requires, so it is in the module cache.
	const module, planted = "golang.org/x/net", "v0.62.0"
	if own[module] == planted {
		t.Fatalf("services/greeter already selects %s %s: plant a newer version", module, planted)
	}
	goIn(ctx, t, filepath.Join(copyDir, "clients/greetctl"), "mod", "edit", "-require="+module+"@"+planted)
	// The workspace records the planted version's checksums in go.work.sum.
	goIn(ctx, t, server, "mod", "download")
	diffs, err = buildlist.TestMismatches(ctx, server, own)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range diffs {
		found = found || d == module+": linked "+planted+", the module's own go.mod resolves "+own[module]
	}
	if !found {
		t.Fatalf("planted %s %s in clients/greetctl only; the server's workspace build list differs by:\n%s\nwant %[1]s named with both versions", module, planted, strings.Join(diffs, "\n"))
	}
	t.Logf("planted drift found:\n  %s", strings.Join(diffs, "\n  "))
}

// copyShippedWorkspace copies the root go.work and the modules it uses, as
// git tracks them in the working tree, into a new directory.
func copyShippedWorkspace(t *testing.T, root string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard",
		"go.work", "go.work.sum", "gen/go", "services/greeter", "clients/greetctl").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, name := range strings.Fields(string(out)) {
		data, err := os.ReadFile(filepath.Join(root, name))
		if os.IsNotExist(err) {
			continue // deleted in the working tree
		} else if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// goIn runs the go command in dir (in the workspace dir belongs to) and
// fails the test with its output if it fails.
func goIn(ctx context.Context, t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
}
