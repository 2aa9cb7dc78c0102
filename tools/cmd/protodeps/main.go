// Command protodeps materialises the third-party protos the buf workspace
// imports (protovalidate) from the Go module pinned in tools/go.mod.
//
// Run it from the repository root: go tool protodeps
package main

import (
	"fmt"
	"os"

	"github.com/acme/greeter/tools/internal/protodeps"
)

func main() {
	version, err := protodeps.Materialise(".", "tools", protodeps.Protovalidate)
	if err != nil {
		fmt.Fprintln(os.Stderr, "protodeps:", err)
		os.Exit(1)
	}
	fmt.Printf("protodeps: %s@%s -> %s\n", protodeps.Protovalidate.Module, version, protodeps.Protovalidate.Dest)
}
