package tracing_test

import (
	"os"
	"testing"

	"github.com/acme/greeter/test/harness/binaries"
)

// Binaries built once for the package's tests, as they ship.
var greeterBin, greetctlBin string

func TestMain(m *testing.M) {
	os.Exit(binaries.Main(m, func(paths []string) error {
		greeterBin, greetctlBin = paths[0], paths[1]
		return nil
	}, binaries.Greeter, binaries.Greetctl))
}
