package contractci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/acme/greeter/tools/internal/protocheck"
)

// Checks are the checks, in the order a run shows them.
var Checks = []Check{
	{Name: "format", Title: "buf format", Fix: "run `make format`"},
	{Name: "lint", Title: "buf lint", Fix: "fix what it reports; `make lint` runs it locally"},
	{Name: "breaking", Title: "buf breaking", Fix: "a break of a released package is a new major package (README.md, \"How to change the contract\")"},
	{Name: "released", Title: "buf breaking (last release)", Fix: "a released package never breaks, whatever the label: make the change in a new major package (README.md, \"How to change the contract\")"},
	{Name: "changelog", Title: "CHANGELOG entry", Fix: "add a line under \"## Unreleased\" of sdk/CHANGELOG.md saying what changed"},
	{Name: "drift", Title: "generated code", Fix: "run `make generate` and commit the result"},
}

// Check is one of the contract checks.
type Check struct {
	// Name is how the command and the results call it.
	Name string
	// Title is how people see it.
	Title string
	// Fix is what to do when it fails.
	Fix string
}

// LookupCheck returns the check called name.
func LookupCheck(name string) (Check, bool) {
	i := slices.IndexFunc(Checks, func(c Check) bool { return c.Name == name })
	if i < 0 {
		return Check{}, false
	}
	return Checks[i], true
}

// Status is how a check ended.
type Status string

// The statuses of a check.
const (
	Passed  Status = "passed"
	Failed  Status = "failed"
	Skipped Status = "skipped"
	// Errored is a check that could not run (a tool missing, a baseline
	// that cannot be read): neither pass nor fail.
	Errored Status = "error"
)

// Result is what one check found. Its JSON form is what each step of the
// workflow leaves for the summary step.
type Result struct {
	Check    string               `json:"check"`
	Status   Status               `json:"status"`
	Findings []protocheck.Finding `json:"findings,omitempty"`
	// Against is, for the breaking check, what it compared against.
	Against string `json:"against,omitempty"`
	// Note is why the check was skipped, why its baseline was a fallback,
	// why it failed without findings, or why it could not run.
	Note string `json:"note,omitempty"`
	// Change is, for the breaking check, how it classifies the change.
	Change *Change `json:"change,omitempty"`
}

// Run runs the check called name on the repository at repoDir; ev and git
// choose the baselines of the checks that compare.
func Run(ctx context.Context, name, repoDir string, ev Event, git Git) Result {
	r := Result{Check: name}
	var err error
	switch name {
	case "format":
		err = protocheck.FormatCheck(ctx, repoDir)
	case "lint":
		err = protocheck.Lint(ctx, repoDir)
	case "breaking":
		return runBreaking(ctx, repoDir, ev, git)
	case "released":
		return runReleased(ctx, repoDir, ev, git)
	case "changelog":
		return runChangelog(repoDir, ev, git)
	case "drift":
		err = protocheck.Drift(ctx, repoDir)
	default:
		err = fmt.Errorf("no check is called %q", name)
	}
	return r.ended(err)
}

// baseline is the event's baseline for r's check (ChooseBaseline); when
// there is none to compare with, ok is false and done is r finished:
// errored, or skipped with the reason.
func (r Result) baseline(ev Event, git Git) (b Baseline, done Result, ok bool) {
	b, err := ChooseBaseline(ev, git)
	if err != nil {
		return b, r.ended(err), false
	}
	if b.Skip != "" {
		r.Status, r.Note = Skipped, b.Skip
		return b, r, false
	}
	return b, r, true
}

// ended is r ended by err: passed (nil), failed (a *protocheck.Error,
// with its findings) or errored.
func (r Result) ended(err error) Result {
	var checkErr *protocheck.Error
	switch {
	case err == nil:
		r.Status = Passed
	case errors.As(err, &checkErr):
		r.Status, r.Findings = Failed, checkErr.Findings
		if len(r.Findings) == 0 {
			r.Note = checkErr.Output
		}
	default:
		r.Status, r.Note = Errored, err.Error()
	}
	return r
}

// Save writes r into dir, for Load.
func Save(dir string, r Result) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, r.Check+".json"), data, 0o644)
}

// Load reads the results Save wrote into dir, in the order of Checks; a
// check with no result (its step did not run) is absent.
func Load(dir string) ([]Result, error) {
	var results []Result
	for _, c := range Checks {
		data, err := os.ReadFile(filepath.Join(dir, c.Name+".json"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var r Result
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", c.Name, err)
		}
		results = append(results, r)
	}
	return results, nil
}
