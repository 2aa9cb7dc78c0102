// Package binaries builds this repository's commands for the tests and
// benchmarks that run them as processes. Each is built inside its own
// module, in the root workspace with the local gen/go (whose versions
// test/e2e/release proves equal to the module's own), and without the race
// detector: measured and tested as it ships.
package binaries

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/acme/greeter/test/harness/repo"
)

// Command is a main package of the repository.
type Command struct {
	// Name is the binary's file name.
	Name string
	// Module is the directory of the module the command belongs to,
	// relative to the repository root.
	Module string
	// Package is the main package, relative to Module, or the import path
	// of a tool the module pins.
	Package string
}

// The repository's commands.
var (
	Greeter    = Command{Name: "greeter", Module: "services/greeter", Package: "./cmd/greeter"}
	Greetctl   = Command{Name: "greetctl", Module: "clients/greetctl", Package: "./cmd/greetctl"}
	BareServer = Command{Name: "bareserver", Module: "test", Package: "./cmd/bareserver"}
	GreetLoad  = Command{Name: "greetload", Module: "test", Package: "./cmd/greetload"}
	// Ghz is the load generator ghz (ghz.sh), at the version test/go.mod
	// pins with its tool directive.
	Ghz = Command{Name: "ghz", Module: "test", Package: "github.com/bojand/ghz/cmd/ghz"}
)

// Build compiles each command of the repository at root into dir and
// returns their paths, in the order given. env, if not empty, is the whole
// environment of the go command (to build against another gen/go, say).
func Build(root, dir string, env []string, cmds ...Command) ([]string, error) {
	paths := make([]string, 0, len(cmds))
	for _, c := range cmds {
		out, err := filepath.Abs(filepath.Join(dir, c.Name))
		if err != nil {
			return nil, err
		}
		cmd := exec.Command("go", "build", "-o", out, c.Package)
		cmd.Dir = filepath.Join(root, c.Module)
		if len(env) > 0 {
			cmd.Env = env
		}
		if output, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s in %s: %w\n%s", c.Package, c.Module, err, output)
		}
		paths = append(paths, out)
	}
	return paths, nil
}

// Main is the body of a TestMain for a package whose tests run cmds as
// processes: it builds them once into a temporary directory, hands their
// paths to use (which may prepare more, and fail), runs the tests and
// cleans up. It returns the exit code for os.Exit.
func Main(m *testing.M, use func(paths []string) error, cmds ...Command) int {
	flag.Parse()
	dir, err := os.MkdirTemp("", "greeter-binaries-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := repo.Root()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	paths, err := Build(root, dir, nil, cmds...)
	if err == nil {
		err = use(paths)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
