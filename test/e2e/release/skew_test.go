package release_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acme/greeter/test/harness/binaries"
	"github.com/acme/greeter/test/harness/buildlist"
	"github.com/acme/greeter/test/harness/process"
	"github.com/acme/greeter/test/harness/repo"
)

// previousGen names the gen/go release before the current one: the newest
// gen/go/v* tag, or, before the first release, the commit that created
// gen/go.
func previousGen(t *testing.T, root string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "tag", "--list", "gen/go/v*", "--sort=-v:refname").Output()
	if err != nil {
		t.Fatal(err)
	}
	if tags := strings.Fields(string(out)); len(tags) > 0 {
		return tags[0]
	}
	out, err = exec.Command("git", "-C", root, "log", "--diff-filter=A", "--format=%H", "--", "gen/go/go.mod").Output()
	if err != nil {
		t.Fatal(err)
	}
	commits := strings.Fields(string(out))
	if len(commits) == 0 {
		t.Skip("no commit has gen/go yet")
	}
	return commits[len(commits)-1]
}

// withGen returns the environment that builds the module of c against the
// gen/go in genDir instead of the local one: a workspace of that module
// alone, whose replacement of the gen/go version it requires points at
// genDir.
func withGen(t *testing.T, root string, c binaries.Command, genDir string) []string {
	t.Helper()
	dir := filepath.Join(root, c.Module)
	version, err := buildlist.RequiredGen(dir)
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "skew.work")
	text := fmt.Sprintf("go 1.26.7\n\nuse %s\n\nreplace %s %s => %s\n", dir, buildlist.GenModule, version, genDir)
	if err := os.WriteFile(work, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GOWORK="+work)
	// An older gen/go may require versions whose checksums the module's
	// go.sum lacks; the workspace records them in its own go.work.sum.
	download := exec.Command("go", "mod", "download")
	download.Dir, download.Env = dir, env
	if out, err := download.CombinedOutput(); err != nil {
		t.Fatalf("go mod download in %s against %s: %v\n%s", c.Module, genDir, err, out)
	}
	return env
}

// extract writes gen/go as it is at git ref into a new directory and
// returns the module's directory there.
func extract(t *testing.T, root, ref string) string {
	t.Helper()
	dir := t.TempDir()
	archive := exec.Command("git", "archive", "--format=tar", ref, "--", "gen/go")
	archive.Dir = root
	tarball, err := archive.Output()
	if err != nil {
		t.Fatalf("git archive %s -- gen/go: %v", ref, err)
	}
	untar := exec.Command("tar", "-x", "-C", dir)
	untar.Stdin = bytes.NewReader(tarball)
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("extract gen/go of %s: %v\n%s", ref, err, out)
	}
	return filepath.Join(dir, "gen", "go")
}

// TestVersionSkew proves the server and greetctl keep talking when one of
// them is built against the previous gen/go release and the other against
// the current one, over a real loopback connection, on both contracts.
func TestVersionSkew(t *testing.T) {
	if testing.Short() {
		t.Skip("builds four binaries")
	}
	root := repo.TestRoot(t)
	prevRef := previousGen(t, root)
	t.Logf("previous gen/go: %s", prevRef)
	prevGen := extract(t, root, prevRef)
	bin := t.TempDir()
	build := func(c binaries.Command, env []string, name string) {
		t.Helper()
		paths, err := binaries.Build(root, t.TempDir(), env, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(paths[0], filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	build(binaries.Greeter, nil, "greeter-current")
	build(binaries.Greeter, withGen(t, root, binaries.Greeter, prevGen), "greeter-previous")
	build(binaries.Greetctl, nil, "greetctl-current")
	build(binaries.Greetctl, withGen(t, root, binaries.Greetctl, prevGen), "greetctl-previous")

	pairs := []struct{ name, server, client string }{
		{"previous greetctl to current greeter", "greeter-current", "greetctl-previous"},
		{"current greetctl to previous greeter", "greeter-previous", "greetctl-current"},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			srv, err := process.Start(ctx, filepath.Join(bin, p.server))
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := srv.Stop(30 * time.Second); err != nil {
					t.Errorf("server exit: %v\n%s", err, srv.Log())
				}
			}()
			talk(ctx, t, filepath.Join(bin, p.client), srv.Addr)
		})
	}
}

// talk runs every kind of call through greetctl at addr and checks the
// greetings.
func talk(ctx context.Context, t *testing.T, greetctl, addr string) {
	t.Helper()
	calls := []struct {
		args      []string
		stdin     string
		want      []string
		wantExit  int
		wantInErr string
	}{
		{args: []string{"hello", "Ada"}, want: []string{"Hello, Ada!"}},
		{args: []string{"hello-again", "Ada"}, want: []string{"Hello again, Ada!"}},
		{args: []string{"--classic", "hello", "Ada"}, want: []string{"Hello, Ada!"}},
		{args: []string{"--classic", "hello-again", "Ada"}, want: []string{"Hello again, Ada!"}},
		{args: []string{"stream", "Ada", "--count", "3"}, want: []string{"Hello, Ada!"}},
		{args: []string{"hello-all"}, stdin: "Ada\nGrace\n", want: []string{"Hello, Ada and Grace!"}},
		{args: []string{"chat"}, stdin: "Ada\nGrace\n", want: []string{"Hello, Ada!", "Hello, Grace!"}},
		{args: []string{"hello", "   "}, wantExit: 3, wantInErr: "name"},
	}
	for _, c := range calls {
		cmd := exec.CommandContext(ctx, greetctl, append([]string{"--addr", addr}, c.args...)...)
		cmd.Stdin = strings.NewReader(c.stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		exit := 0
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			exit = exitErr.ExitCode()
		} else if err != nil {
			t.Fatalf("greetctl %v: %v", c.args, err)
		}
		if exit != c.wantExit {
			t.Errorf("greetctl %v: exit %d, want %d\nstdout: %s\nstderr: %s", c.args, exit, c.wantExit, &stdout, &stderr)
			continue
		}
		for _, want := range c.want {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("greetctl %v: stdout lacks %q:\n%s", c.args, want, &stdout)
			}
		}
		if !strings.Contains(stderr.String(), c.wantInErr) {
			t.Errorf("greetctl %v: stderr lacks %q:\n%s", c.args, c.wantInErr, &stderr)
		}
	}
}
