// Command contractci runs one contract check of a pull request or a push
// in GitHub Actions, writes the job summary of the checks that ran, or
// posts them as the pull request's comment (tools/internal/contractci
// decides the rest). Run it from the repository root, in the toolchain's
// workspace:
//
//	GOWORK=$PWD/tools/go.work go tool contractci [-results DIR] format|lint|breaking|released|changelog|drift
//	GOWORK=$PWD/tools/go.work go tool contractci [-results DIR] summary|comment
//
// Each check prints its findings, as annotations in GitHub Actions, leaves
// its result in DIR (default: $RUNNER_TEMP/contractci in Actions,
// .cache/contractci elsewhere) and exits 1 when it fails, 2 when it cannot
// run, 0 when it passes or is skipped. summary writes the table of those
// results to $GITHUB_STEP_SUMMARY (appending, as every step's summary
// does), or to standard output where that is not set. comment makes the
// table, with every finding, the one comment of the pull request that it
// updates on each run (GITHUB_TOKEN, GITHUB_API_URL); when it cannot, it
// warns and exits 0: the checks have reported already. breaking compares
// against the pull request's base, or for a push the commit before it
// (GITHUB_EVENT_NAME, GITHUB_EVENT_PATH), and released against the newest
// api/vX.Y.Z tag; outside Actions, breaking compares against the commit
// before main, as `make breaking`.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/acme/greeter/tools/internal/contractci"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, ".", os.Stdout, os.Stderr))
}

// run is the command with its arguments, its environment (getenv), the
// repository it runs in (dir) and its output.
func run(ctx context.Context, args []string, getenv func(string) string, dir string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("contractci", flag.ContinueOnError)
	flags.SetOutput(stderr)
	results := flags.String("results", defaultResults(getenv, dir), "directory where each check leaves its result for summary and comment")
	flags.Usage = func() {
		names := make([]string, 0, len(contractci.Checks))
		for _, c := range contractci.Checks {
			names = append(names, c.Name)
		}
		fmt.Fprintf(flags.Output(), "usage: go tool contractci [-results DIR] %s|summary|comment\n", strings.Join(names, "|"))
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() != 1 {
		flags.Usage()
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "contractci:", err)
		return 2
	}
	name := flags.Arg(0)
	if name == "summary" {
		return summary(*results, getenv, stdout, stderr)
	}
	if _, ok := contractci.LookupCheck(name); !ok && name != "comment" {
		fmt.Fprintf(stderr, "contractci: no check is called %q\n", name)
		flags.Usage()
		return 2
	}
	ev, err := contractci.EventFromEnv(getenv)
	if err != nil {
		return fail(err)
	}
	if name == "comment" {
		return comment(ctx, ev, *results, getenv, stdout)
	}
	r := contractci.Run(ctx, name, dir, ev, contractci.GitAt(ctx, dir))
	contractci.Log(stdout, r, getenv("GITHUB_ACTIONS") == "true")
	if err := contractci.Save(*results, r); err != nil {
		return fail(err)
	}
	switch r.Status {
	case contractci.Failed:
		return 1
	case contractci.Errored:
		return 2
	}
	return 0
}

func summary(dir string, getenv func(string) string, stdout, stderr io.Writer) int {
	results, err := contractci.Load(dir)
	if err != nil {
		fmt.Fprintln(stderr, "contractci:", err)
		return 2
	}
	text := contractci.Summary(results)
	fmt.Fprint(stdout, text)
	path := getenv("GITHUB_STEP_SUMMARY")
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
		fmt.Fprintln(stderr, "contractci: write the job summary:", err)
		return 2
	}
	return 0
}

// comment posts the pull request's comment. A failure is a warning, not
// the job's: the checks have reported in their steps and the summary.
func comment(ctx context.Context, ev contractci.Event, dir string, getenv func(string) string, stdout io.Writer) int {
	var opts []contractci.GitHubOption
	if api := getenv("GITHUB_API_URL"); api != "" {
		opts = append(opts, contractci.WithBaseURL(api))
	}
	runURL := ""
	if id := getenv("GITHUB_RUN_ID"); id != "" {
		runURL = getenv("GITHUB_SERVER_URL") + "/" + ev.Repository + "/actions/runs/" + id
	}
	did, err := contractci.Comment(ctx, ev, dir, contractci.NewGitHub(getenv("GITHUB_TOKEN"), opts...), runURL)
	if err != nil {
		contractci.Warn(stdout, "contract checks comment", "no comment on the pull request: "+err.Error()+
			"; the job summary and the step logs hold the checks", getenv("GITHUB_ACTIONS") == "true")
		return 0
	}
	fmt.Fprintln(stdout, "contractci:", did)
	return 0
}

func defaultResults(getenv func(string) string, dir string) string {
	if tmp := getenv("RUNNER_TEMP"); tmp != "" {
		return filepath.Join(tmp, "contractci")
	}
	return filepath.Join(dir, ".cache", "contractci")
}
