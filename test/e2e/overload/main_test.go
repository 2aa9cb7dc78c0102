package overload_test

import (
	"os"
	"testing"

	"github.com/acme/greeter/test/harness/binaries"
)

// greeterBin is the server built once for the package's tests, without the
// race detector: measured as it ships.
var greeterBin string

func TestMain(m *testing.M) {
	os.Exit(binaries.Main(m, func(paths []string) error {
		greeterBin = paths[0]
		return nil
	}, binaries.Greeter))
}
