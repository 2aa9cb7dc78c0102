// Command contractci runs one contract check of a pull request or a push
// in GitHub Actions, or writes the job summary of the checks that ran
// (tools/internal/contractci decides the rest). Run it from the
// repository root, in the toolchain's workspace:
//
//	GOWORK=$PWD/tools/go.work go tool contractci [-results DIR] format|lint|breaking|drift
//	GOWORK=$PWD/tools/go.work go tool contractci [-results DIR] summary
//
// Each check prints its findings, as annotations in GitHub Actions, leaves
// its result in DIR (default: $RUNNER_TEMP/contractci in Actions,
// .cache/contractci elsewhere) and exits 1 when it fails, 2 when it cannot
// run, 0 when it passes or is skipped. summary writes the table of those
// results to $GITHUB_STEP_SUMMARY, or to standard output where that is
// not set. The breaking check compares against the pull request's base, or
// for a push the commit before it (GITHUB_EVENT_NAME, GITHUB_EVENT_PATH);
// outside Actions, against the commit before main, as `make breaking`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/acme/greeter/tools/internal/contractci"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	flags := flag.NewFlagSet("contractci", flag.ContinueOnError)
	results := flags.String("results", defaultResults(), "directory where each check leaves its result for summary")
	flags.Usage = func() {
		names := make([]string, 0, len(contractci.Checks))
		for _, c := range contractci.Checks {
			names = append(names, c.Name)
		}
		fmt.Fprintf(flags.Output(), "usage: go tool contractci [-results DIR] %s|summary\n", strings.Join(names, "|"))
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() != 1 {
		flags.Usage()
		return 2
	}
	name := flags.Arg(0)
	if name == "summary" {
		return summary(*results)
	}
	if _, ok := contractci.LookupCheck(name); !ok {
		fmt.Fprintf(os.Stderr, "contractci: no check is called %q\n", name)
		flags.Usage()
		return 2
	}
	ev, err := contractci.EventFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "contractci:", err)
		return 2
	}
	r := contractci.Run(ctx, name, ".", ev, contractci.GitAt(ctx, "."))
	contractci.Log(os.Stdout, r, os.Getenv("GITHUB_ACTIONS") == "true")
	if err := contractci.Save(*results, r); err != nil {
		fmt.Fprintln(os.Stderr, "contractci:", err)
		return 2
	}
	switch r.Status {
	case contractci.Failed:
		return 1
	case contractci.Errored:
		return 2
	}
	return 0
}

func summary(dir string) int {
	results, err := contractci.Load(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "contractci:", err)
		return 2
	}
	text := contractci.Summary(results)
	fmt.Print(text)
	path := os.Getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		return 0
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		_, err = f.WriteString(text)
		if closeErr := f.Close(); err == nil {
			err = closeErr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "contractci: write the job summary:", err)
		return 2
	}
	return 0
}

func defaultResults() string {
	if tmp := os.Getenv("RUNNER_TEMP"); tmp != "" {
		return filepath.Join(tmp, "contractci")
	}
	return filepath.Join(".cache", "contractci")
}
