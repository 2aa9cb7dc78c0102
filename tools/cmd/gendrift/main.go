// Command gendrift fails when the committed generated code is not exactly
// what `buf generate` produces from api/ (a hand edit, or a proto change
// without regeneration): gen/go, the TypeScript and Python SDKs (sdk/ts/gen,
// sdk/python/src) and the API reference (docs/api), each from its template
// (protocheck.Trees). With -write it regenerates them all in place instead
// (`make generate`). Run it from the repository root:
//
//	go tool gendrift [-write]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/acme/greeter/tools/internal/protocheck"
)

func main() {
	write := flag.Bool("write", false, "regenerate every tree in place instead of checking it")
	flag.Parse()
	var dirs []string
	for _, tree := range protocheck.Trees {
		dirs = append(dirs, tree.Dir)
	}
	if *write {
		if err := protocheck.Generate(context.Background(), "."); err != nil {
			fmt.Fprintln(os.Stderr, "gendrift:", err)
			os.Exit(1)
		}
		fmt.Println("gendrift: regenerated", strings.Join(dirs, ", "))
		return
	}
	if err := protocheck.Drift(context.Background(), "."); err != nil {
		fmt.Fprintln(os.Stderr, "gendrift:", err)
		var checkErr *protocheck.Error
		if errors.As(err, &checkErr) {
			os.Exit(1)
		}
		os.Exit(2)
	}
	fmt.Println("gendrift:", strings.Join(dirs, ", "), "match buf generate")
}
