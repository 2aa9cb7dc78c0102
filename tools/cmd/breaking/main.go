// Command breaking runs `buf breaking` on the working tree of the repository
// against a baseline. Run it from the repository root.
//
// Usage:
//
//	go tool breaking [AGAINST]
//
// AGAINST is a git ref (branch, tag or commit; default: the previous commit
// of main, or HEAD~1 where there is no local main), a directory laid out like
// this repository, or a buf image file (.binpb, .bin, .json) of the contract,
// built with `go tool buf build api -o contract.binpb`. When the default
// baseline does not exist (the first commit), there is nothing to compare
// against and the check passes with a note. In GitHub Actions the contract
// workflow runs `go tool contractci breaking` instead, which takes its
// baseline from the event (tools/internal/contractci).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/acme/greeter/tools/internal/contractci"
	"github.com/acme/greeter/tools/internal/protocheck"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "breaking:", err)
		var checkErr *protocheck.Error
		if errors.As(err, &checkErr) {
			os.Exit(1)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) > 1 {
		return errors.New("usage: go tool breaking [GIT-REF | DIR | IMAGE]")
	}
	against := ""
	if len(args) == 1 {
		against = args[0]
	}
	if isPath(against) {
		fmt.Printf("breaking: checking against %s\n", against)
		return protocheck.Breaking(ctx, ".", against)
	}
	what := against
	if against == "" {
		// The same default as the contract checks' outside GitHub Actions.
		b, err := contractci.ChooseBaseline(contractci.Event{}, contractci.GitAt(ctx, "."))
		if err != nil {
			return err
		}
		if b.Skip != "" {
			fmt.Println("breaking:", b.Skip)
			return nil
		}
		against, what = b.Commit, b.What
	} else if !protocheck.RefExists(ctx, ".", against) {
		return fmt.Errorf("%q is neither a git ref, a directory nor an image file", against)
	}
	dir, cleanup, err := protocheck.Baseline(ctx, ".", against)
	if err != nil {
		return err
	}
	defer cleanup()
	fmt.Printf("breaking: checking the working tree against %s\n", what)
	if err := protocheck.Breaking(ctx, ".", dir); err != nil {
		return err
	}
	fmt.Println("breaking: no breaking changes")
	return nil
}

// isPath reports whether against names a directory or an image file rather
// than a git ref.
func isPath(against string) bool {
	if against == "" {
		return false
	}
	for _, ext := range []string{".binpb", ".bin", ".json", ".json.gz", ".bin.gz"} {
		if strings.HasSuffix(against, ext) {
			return true
		}
	}
	info, err := os.Stat(against)
	return err == nil && info.IsDir()
}
