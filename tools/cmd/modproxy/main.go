// Command modproxy runs the go command against this repository's modules as
// if they were released, through a file-based GOPROXY (see package
// modproxy). Run it from the repository root.
//
// Usage:
//
//	go tool modproxy tidy
//	    Publish gen/go at the version each consumer module requires, then
//	    run `go mod tidy` with GOWORK=off in services/greeter and
//	    clients/greetctl. Use it instead of a plain `go mod tidy`, which
//	    looks for the unpublished gen/go on the public proxy.
//	go tool modproxy exec DIR COMMAND [ARG...]
//	    Publish gen/go as tidy does, then run COMMAND in DIR with GOWORK=off
//	    and the file proxy first in GOPROXY, e.g.
//	    go tool modproxy exec services/greeter go get github.com/spf13/cobra@v1.10.2
//	go tool modproxy publish VERSION
//	    Publish gen/go as VERSION into .cache/goproxy and print the
//	    environment that uses it.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"

	"github.com/acme/greeter/tools/internal/modproxy"
)

const (
	proxyDir  = ".cache/goproxy"
	genModule = "gen/go"
)

// consumers are the modules that require gen/go.
var consumers = []string{"services/greeter", "clients/greetctl"}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "modproxy:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 1 && args[0] == "tidy":
		return tidy()
	case len(args) >= 3 && args[0] == "exec":
		if err := publishRequired(); err != nil {
			return err
		}
		return goCommand(args[1], args[2], args[3:]...)
	case len(args) == 2 && args[0] == "publish":
		if _, err := modproxy.Publish(proxyDir, genModule, args[1]); err != nil {
			return err
		}
		fmt.Println(strings.Join(modproxy.Env(proxyDir, goEnv("GOPROXY")), "\n"))
		return nil
	default:
		return fmt.Errorf("usage: go tool modproxy tidy | exec DIR COMMAND [ARG...] | publish VERSION")
	}
}

func tidy() error {
	if err := publishRequired(); err != nil {
		return err
	}
	for _, dir := range consumers {
		if err := goCommand(dir, "go", "mod", "tidy"); err != nil {
			return err
		}
		fmt.Println("tidied", dir)
	}
	return nil
}

// publishRequired publishes gen/go at every version a consumer requires.
func publishRequired() error {
	for _, dir := range consumers {
		name := filepath.Join(dir, "go.mod")
		data, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		f, err := modfile.ParseLax(name, data, nil)
		if err != nil {
			return err
		}
		for _, r := range f.Require {
			if r.Mod.Path == "github.com/acme/greeter/gen/go" {
				if _, err := modproxy.Publish(proxyDir, genModule, r.Mod.Version); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// goCommand runs name with args in dir against the file proxy.
func goCommand(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), modproxy.Env(proxyDir, goEnv("GOPROXY"))...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s in %s: %w", name, strings.Join(args, " "), dir, err)
	}
	return nil
}

func goEnv(name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
