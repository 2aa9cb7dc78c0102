// Package binaries builds this repository's commands for the tests and
// benchmarks that run them as processes. They are built from the working
// tree in workspace mode and without the race detector: measured as they
// ship.
package binaries

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/acme/greeter/tools/internal/repo"
)

// Command is a main package of the repository.
type Command struct {
	// Name is the binary's file name.
	Name string
	// Package is the main package, relative to the repository root.
	Package string
}

// The repository's commands.
var (
	Greeter    = Command{Name: "greeter", Package: "./services/greeter/cmd/greeter"}
	Greetctl   = Command{Name: "greetctl", Package: "./clients/greetctl/cmd/greetctl"}
	BareServer = Command{Name: "bareserver", Package: "./tools/cmd/bareserver"}
)

// Build compiles each command of the repository at root into dir and
// returns their paths, in the order given.
func Build(root, dir string, cmds ...Command) ([]string, error) {
	paths := make([]string, 0, len(cmds))
	for _, c := range cmds {
		out := filepath.Join(dir, c.Name)
		cmd := exec.Command("go", "build", "-o", out, c.Package)
		cmd.Dir = root
		if output, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %w\n%s", c.Package, err, output)
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
	paths, err := Build(root, dir, cmds...)
	if err == nil {
		err = use(paths)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
