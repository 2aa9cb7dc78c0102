package contractci_test

import (
	"strings"
	"testing"

	"github.com/acme/greeter/tools/internal/contractci"
	"github.com/acme/greeter/tools/internal/protocheck"
)

// TestJudge decides a pull request's break, with and without the label,
// on a real clone with planted release tags: a break of a released package
// (by api/ or by gen/go) refuses the label, naming the tag and the new
// major package to make instead; a break of a package no release holds
// lands as a warning.
func TestJudge(t *testing.T) {
	t.Parallel()
	c := newReleased(t)
	g := c.Git()
	brokenIn := func(dir string) protocheck.Finding {
		return protocheck.Finding{Path: dir + "/greeter.proto", StartLine: 3, Type: "FIELD_SAME_NAME", Message: "renamed"}
	}
	base := contractci.Baseline{Commit: c.head, What: "the tip of main"}
	labelled := base
	labelled.Labelled = `pull request #42 is labelled "buf skip breaking"`
	failed := func(dirs ...string) contractci.Result {
		r := contractci.Result{Check: "breaking", Status: contractci.Failed, Against: base.What}
		for _, d := range dirs {
			r.Findings = append(r.Findings, brokenIn(d))
		}
		return r
	}
	tests := map[string]struct {
		r        contractci.Result
		b        contractci.Baseline
		status   contractci.Status
		refusals []string // the messages of the LabelRefused findings, in part
		note     string
		change   contractci.ChangeKind
	}{
		"no label, a break of a released package": {r: failed(v1), b: base, status: contractci.Failed, change: contractci.ReleasedBreak},
		"no label, a break of an unreleased one":  {r: failed(v4), b: base, status: contractci.Failed, change: contractci.UnreleasedBreak},
		"labelled, a break of a released package": {r: failed(v1), b: labelled, status: contractci.Failed, change: contractci.ReleasedBreak,
			refusals: []string{`pull request #42 is labelled "buf skip breaking", but api/acme/greeter/v1 is released (api/v1.1.0-rc.1 holds it) and consumers depend on it: the label cannot let it break. Make the change in a new major package, api/acme/greeter/v2, beside it`}},
		"labelled, a break gen/go released": {r: failed(v3, v4), b: labelled, status: contractci.Failed, change: contractci.ReleasedBreak,
			refusals: []string{"api/acme/greeter/v3 is released (gen/go/v1.2.0 holds it)"}},
		"labelled, a break of an unreleased package": {r: failed(v4), b: labelled, status: contractci.Skipped, change: contractci.UnreleasedBreak,
			note: `pull request #42 is labelled "buf skip breaking": an intended break of api/acme/greeter/v4, which no release holds, allowed`},
		"labelled, nothing breaks": {r: contractci.Result{Check: "breaking", Status: contractci.Passed}, b: labelled, status: contractci.Passed, change: contractci.NoChange,
			note: "but nothing breaks: the label is not needed"},
		"labelled, could not run": {r: contractci.Result{Check: "breaking", Status: contractci.Errored, Note: "buf is missing"}, b: labelled, status: contractci.Errored,
			note: "buf is missing"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := contractci.Judge(tc.r, tc.b, g)
			if got.Status != tc.status || !strings.Contains(got.Note, tc.note) {
				t.Errorf("got %s (%q), want %s (%q)", got.Status, got.Note, tc.status, tc.note)
			}
			var refusals []protocheck.Finding
			for _, f := range got.Findings {
				if f.Type == contractci.LabelRefused {
					refusals = append(refusals, f)
				}
			}
			if len(refusals) != len(tc.refusals) || len(got.Findings)-len(refusals) != len(tc.r.Findings) {
				t.Fatalf("findings %+v; want %d refusals beside the %d breaks", got.Findings, len(tc.refusals), len(tc.r.Findings))
			}
			for i, f := range refusals {
				if !strings.Contains(f.Message, tc.refusals[i]) || !strings.HasSuffix(f.Path, ".proto") {
					t.Errorf("refusal at %s says %q, want it to say %q", f.Path, f.Message, tc.refusals[i])
				}
			}
			var kind contractci.ChangeKind
			if got.Change != nil {
				kind = got.Change.Kind
			}
			if kind != tc.change {
				t.Errorf("change %q, want %q", kind, tc.change)
			}
		})
	}
}
