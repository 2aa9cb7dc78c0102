package reliability_test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Binaries built once for the package's tests, without the race detector:
// the server is measured as it ships.
var greeterBin, greetctlBin string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		flag.Parse()
		dir, err := os.MkdirTemp("", "reliability")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		root, err := filepath.Abs(filepath.Join("..", "..", ".."))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		greeterBin, greetctlBin = filepath.Join(dir, "greeter"), filepath.Join(dir, "greetctl")
		for _, b := range []struct{ dir, main, out string }{
			{"services/greeter", "./cmd/greeter", greeterBin},
			{"clients/greetctl", "./cmd/greetctl", greetctlBin},
		} {
			cmd := exec.Command("go", "build", "-o", b.out, b.main)
			cmd.Dir = filepath.Join(root, b.dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.dir, err, out)
				return 1
			}
		}
		return m.Run()
	}())
}
