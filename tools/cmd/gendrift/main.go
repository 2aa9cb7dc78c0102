// Command gendrift fails when the committed generated code in gen/go is not
// exactly what `buf generate` produces from api/ (a hand edit, or a proto
// change without regeneration). Run it from the repository root:
//
//	go tool gendrift
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/acme/greeter/tools/internal/protocheck"
)

func main() {
	if err := protocheck.Drift(context.Background(), "."); err != nil {
		fmt.Fprintln(os.Stderr, "gendrift:", err)
		var checkErr *protocheck.Error
		if errors.As(err, &checkErr) {
			os.Exit(1)
		}
		os.Exit(2)
	}
	fmt.Println("gendrift: gen/go matches buf generate")
}
