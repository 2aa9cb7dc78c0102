package releasecheck_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/modfile"

	"github.com/acme/greeter/tools/internal/modproxy"
	"github.com/acme/greeter/tools/internal/repo"
	"github.com/acme/greeter/tools/internal/serverproc"
)

const genPath = modproxy.GenModule

// consumer is a module that requires gen/go and ships a binary.
type consumer struct {
	dir, main string
}

var (
	server = consumer{dir: "services/greeter", main: "./cmd/greeter"}
	client = consumer{dir: "clients/greetctl", main: "./cmd/greetctl"}
)

func newSandbox(t *testing.T) *modproxy.Sandbox {
	t.Helper()
	sb, err := modproxy.NewSandbox(t.TempDir(), repo.GoEnv("GOPROXY"), repo.GoEnv("GOMODCACHE"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

// requiredGen returns the gen/go version that the consumer's go.mod requires.
func requiredGen(t *testing.T, root string, c consumer) string {
	t.Helper()
	version, err := modproxy.RequiredVersion(filepath.Join(root, c.dir), genPath)
	if err != nil {
		t.Fatal(err)
	}
	return version
}

// publishRequired publishes gen/go at the version c requires, as a user
// would get it (Sandbox.PublishGen), and checks that c's go.sum records an
// unreleased version's current content.
func publishRequired(t *testing.T, sb *modproxy.Sandbox, root string, c consumer) {
	t.Helper()
	version := requiredGen(t, root, c)
	pub, released, err := sb.PublishGen(root, version)
	if err != nil {
		t.Fatal(err)
	}
	if released {
		return
	}
	sum, err := os.ReadFile(filepath.Join(root, c.dir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sum), genPath+" "+version+" "+pub.Sum) {
		t.Fatalf("%s/go.sum does not record the current content of the unreleased gen/go %s: run `make tidy` and commit", c.dir, version)
	}
}

// goCmd runs the go command in dir against the sandbox (GOWORK=off).
func goCmd(t *testing.T, sb *modproxy.Sandbox, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = sb.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("GOWORK=off go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	t.Logf("GOWORK=off go %s in %s:\n%s", strings.Join(args, " "), dir, tail(out, 20))
}

func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestStandaloneModules builds and tests each consumer of gen/go outside the
// workspace, with exactly its committed go.mod and go.sum, against gen/go
// served by a proxy: what a user who `go install`s it gets.
func TestStandaloneModules(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and tests two modules from scratch")
	}
	root := repo.TestRoot(t)
	for _, c := range []consumer{server, client} {
		t.Run(c.dir, func(t *testing.T) {
			sb := newSandbox(t)
			publishRequired(t, sb, root, c)
			dir := filepath.Join(root, c.dir)
			goCmd(t, sb, dir, "build", "-trimpath", "./...")
			goCmd(t, sb, dir, "test", "-trimpath", "./...")
		})
	}
}

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

// build compiles c's binary with GOWORK=off into out. With pub set, c is
// built against that gen/go release instead of the one its go.mod requires,
// through a temporary -modfile, leaving the module untouched.
func build(t *testing.T, sb *modproxy.Sandbox, root string, c consumer, pub *modproxy.Published, out string) {
	t.Helper()
	args := []string{"build", "-trimpath", "-o", out}
	if pub != nil {
		dir := t.TempDir()
		data, err := os.ReadFile(filepath.Join(root, c.dir, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		f, err := modfile.Parse("go.mod", data, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.AddRequire(genPath, pub.Version.Version); err != nil {
			t.Fatal(err)
		}
		data, err = f.Format()
		if err != nil {
			t.Fatal(err)
		}
		sum, err := os.ReadFile(filepath.Join(root, c.dir, "go.sum"))
		if err != nil {
			t.Fatal(err)
		}
		modFile := filepath.Join(dir, "alt.mod")
		if err := os.WriteFile(modFile, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "alt.sum"), sum, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := modproxy.WriteGoSum(filepath.Join(dir, "alt.sum"), *pub); err != nil {
			t.Fatal(err)
		}
		// -mod=mod: the older gen/go may need other versions of its
		// dependencies than the committed go.sum lists.
		args = append(args, "-mod=mod", "-modfile="+modFile)
	}
	goCmd(t, sb, filepath.Join(root, c.dir), append(args, c.main)...)
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
	sb := newSandbox(t)
	publishRequired(t, sb, root, server)
	publishRequired(t, sb, root, client)
	prev, err := sb.PublishGitRef(root, prevRef, "gen/go", "v0.0.0-skew.previous")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	build(t, sb, root, server, nil, filepath.Join(bin, "greeter-current"))
	build(t, sb, root, server, &prev, filepath.Join(bin, "greeter-previous"))
	build(t, sb, root, client, nil, filepath.Join(bin, "greetctl-current"))
	build(t, sb, root, client, &prev, filepath.Join(bin, "greetctl-previous"))

	pairs := []struct{ name, server, client string }{
		{"previous greetctl to current greeter", "greeter-current", "greetctl-previous"},
		{"current greetctl to previous greeter", "greeter-previous", "greetctl-current"},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			srv, err := serverproc.Start(ctx, filepath.Join(bin, p.server))
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
