// Command protodeps materialises the third-party protos the repository
// generates from or imports (protovalidate, connectrpc's conformance suite)
// from the Go modules that pin them (tools/go.mod, test/go.mod).
//
// Run it from the repository root: go tool protodeps
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/acme/greeter/tools/internal/protodeps"
)

func main() {
	for _, dep := range protodeps.All {
		version, err := protodeps.Materialise(".", filepath.FromSlash(dep.PinnedBy), dep)
		if err != nil {
			fmt.Fprintln(os.Stderr, "protodeps:", err)
			os.Exit(1)
		}
		fmt.Printf("protodeps: %s@%s -> %s\n", dep.Module, version, dep.Dest)
	}
}
