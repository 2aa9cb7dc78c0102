// Command modproxy runs the go command against this repository's modules as
// if gen/go were released: it publishes the local gen/go into a file-based
// GOPROXY with a private module cache (see package modproxy) and runs the
// command with GOWORK=off. Run it from the repository root.
//
// Usage:
//
//	go tool modproxy tidy
//	    `go work sync` of the root workspace (gen/go, services/greeter,
//	    clients/greetctl), printing every requirement it moved, then
//	    `go mod tidy` with GOWORK=off in every module that requires gen/go
//	    (services/greeter, clients/greetctl, test). Use it instead of a
//	    plain `go mod tidy`, which looks for the unpublished gen/go on the
//	    public proxy; it also records an unreleased gen/go's current content
//	    in their go.sum.
//	go tool modproxy exec DIR COMMAND [ARG...]
//	    Run COMMAND in DIR, e.g.
//	    go tool modproxy exec services/greeter go get github.com/spf13/cobra@v1.10.2
//	    It fails, naming the fix, when DIR's go.sum does not record the
//	    content of the unreleased gen/go: run `make tidy` first.
//
// gen/go is published at every version a consumer module requires: from
// its tag gen/go/vX.Y.Z once released, from the working tree before that.
package main

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"

	"github.com/acme/greeter/tools/internal/modproxy"
	"github.com/acme/greeter/tools/internal/repo"
)

// consumers are the modules that require gen/go.
var consumers = []string{"services/greeter", "clients/greetctl", "test"}

// shippedWork is the workspace of the modules that ship, whose requirements
// `go work sync` aligns: built together there, each must still resolve the
// same versions alone (test/e2e/release proves it).
const shippedWork = "go.work"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "modproxy:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 || (args[0] == "exec" && len(args) < 3) || (args[0] != "exec" && args[0] != "tidy") {
		return fmt.Errorf("usage: go tool modproxy tidy | go tool modproxy exec DIR COMMAND [ARG...]")
	}
	tmp, err := os.MkdirTemp("", "greeter-modproxy-")
	if err != nil {
		return err
	}
	sandbox, err := modproxy.NewSandbox(tmp, repo.GoEnv("GOPROXY"), repo.GoEnv("GOMODCACHE"))
	if err != nil {
		return err
	}
	defer func() {
		sandbox.Close()
		os.RemoveAll(tmp)
	}()
	if args[0] == "exec" {
		if err := publishRequired(sandbox, false); err != nil {
			return err
		}
		return command(sandbox, args[1], args[2], args[3:]...)
	}
	// Sync first: it may change gen/go's go.mod, and so the content the
	// consumers' go.sum must record for it.
	if err := workSync(); err != nil {
		return err
	}
	if err := command(sandbox, modproxy.GenDir, "go", "mod", "tidy"); err != nil {
		return err
	}
	fmt.Println("tidied", modproxy.GenDir)
	if err := publishRequired(sandbox, true); err != nil {
		return err
	}
	for _, dir := range consumers {
		if err := command(sandbox, dir, "go", "mod", "tidy"); err != nil {
			return err
		}
		fmt.Println("tidied", dir)
	}
	return nil
}

// publishRequired publishes gen/go at every version a consumer requires
// (see Sandbox.PublishGen). For an unreleased version, the consumers' go.sum
// lines must follow its content: with update they are brought up to date,
// without it a stale line is an error.
func publishRequired(sandbox *modproxy.Sandbox, update bool) error {
	for _, dir := range consumers {
		version, err := modproxy.RequiredVersion(dir, modproxy.GenModule)
		if err != nil {
			return err
		}
		pub, released, err := sandbox.PublishGen(".", version)
		if err != nil {
			return err
		}
		if released {
			continue
		}
		sum := filepath.Join(dir, "go.sum")
		if update {
			if err := modproxy.WriteGoSum(sum, pub); err != nil {
				return err
			}
			continue
		}
		if err := modproxy.CheckGoSum(sum, pub); err != nil {
			return fmt.Errorf("%w: run `make tidy` and commit the result", err)
		}
	}
	return nil
}

// command runs name with args in dir against the sandbox.
func command(sandbox *modproxy.Sandbox, dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = sandbox.Env()
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s in %s: %w", name, strings.Join(args, " "), dir, err)
	}
	return nil
}

// workSync runs `go work sync` on the shipped modules' workspace, so that
// each of them requires what the workspace selects for it, and prints each
// requirement that moved. Without it a module built in the workspace could
// link a version its own go.mod does not select (one raised by a sibling).
func workSync() error {
	work, err := filepath.Abs(shippedWork)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(work)
	if err != nil {
		return err
	}
	wf, err := modfile.ParseWork(work, data, nil)
	if err != nil {
		return err
	}
	before := map[string]map[string]string{}
	for _, u := range wf.Use {
		if before[u.Path], err = modproxy.Requirements(u.Path); err != nil {
			return err
		}
	}
	env := append(os.Environ(), "GOWORK="+work)
	cmd := exec.Command("go", "work", "sync")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go work sync: %w", err)
	}
	// go work sync leaves some indirect requirements below what the
	// workspace selects (measured: clients/greetctl kept
	// prometheus/client_golang v1.24.1 while the server's v1.25.0 was
	// linked into greetctl in the workspace), so every requirement lower
	// than the workspace's selection is raised to it as well.
	if err := raiseToWorkspace(env, wf); err != nil {
		return err
	}
	for _, u := range wf.Use {
		after, err := modproxy.Requirements(u.Path)
		if err != nil {
			return err
		}
		for _, path := range slices.Sorted(maps.Keys(after)) {
			if old := before[u.Path][path]; old != after[path] {
				fmt.Printf("go work sync: %s: %s %s -> %s\n", filepath.Clean(u.Path), path, cmp.Or(old, "(none)"), after[path])
			}
		}
	}
	return nil
}

// raiseToWorkspace raises every requirement of each workspace module that
// is lower than the version the workspace selects for it.
func raiseToWorkspace(env []string, wf *modfile.WorkFile) error {
	list := exec.Command("go", "list", "-m", "-f", "{{if .Version}}{{.Path}} {{.Version}}{{end}}", "all")
	list.Env = env
	list.Stderr = os.Stderr
	out, err := list.Output()
	if err != nil {
		return fmt.Errorf("go list -m all in the workspace: %w", err)
	}
	selected := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if path, version, ok := strings.Cut(line, " "); ok {
			selected[path] = version
		}
	}
	for _, u := range wf.Use {
		reqs, err := modproxy.Requirements(u.Path)
		if err != nil {
			return err
		}
		var edits []string
		for path, version := range reqs {
			if want, ok := selected[path]; ok && semver.Compare(version, want) < 0 {
				edits = append(edits, "-require="+path+"@"+want)
			}
		}
		if len(edits) == 0 {
			continue
		}
		slices.Sort(edits)
		edit := exec.Command("go", append([]string{"mod", "edit"}, edits...)...)
		edit.Dir = u.Path
		edit.Stderr = os.Stderr
		if err := edit.Run(); err != nil {
			return fmt.Errorf("go mod edit in %s: %w", u.Path, err)
		}
	}
	return nil
}
