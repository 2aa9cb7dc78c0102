// Command modproxy runs the go command against this repository's modules as
// if gen/go were released: it publishes the local gen/go into a file-based
// GOPROXY with a private module cache (see package modproxy) and runs the
// command with GOWORK=off. Run it from the repository root.
//
// Usage:
//
//	go tool modproxy tidy
//	    `go mod tidy` in every module that requires gen/go (services/greeter,
//	    clients/greetctl, test). Use it instead of a plain `go mod tidy`,
//	    which looks for the unpublished gen/go on the public proxy; it also
//	    records an unreleased gen/go's current content in their go.sum.
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
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/acme/greeter/tools/internal/modproxy"
	"github.com/acme/greeter/tools/internal/repo"
)

// consumers are the modules that require gen/go.
var consumers = []string{"services/greeter", "clients/greetctl", "test"}

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
	tidy := args[0] == "tidy"
	if err := publishRequired(sandbox, tidy); err != nil {
		return err
	}
	if !tidy {
		return command(sandbox, args[1], args[2], args[3:]...)
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
