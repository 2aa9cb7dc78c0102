package contractci

import (
	"context"
	"fmt"
	"strings"

	"github.com/acme/greeter/tools/internal/protocheck"
)

// LabelRefused is the Type of the finding that refuses SkipBreakingLabel
// on a break of a released package.
const LabelRefused = "LABEL_REFUSED"

// runBreaking is the breaking check against the event's own baseline (a
// pull request's base, the commit before a push), which also classifies
// the change. A pull request labelled SkipBreakingLabel is checked all the
// same: its break is allowed, as warnings, when every package it breaks is
// one no release holds, and refused otherwise.
func runBreaking(ctx context.Context, repoDir string, ev Event, git Git) Result {
	r := Result{Check: "breaking"}
	b, done, ok := r.baseline(ev, git)
	if !ok {
		return done
	}
	r.Against, r.Note = b.What, b.Note
	return Judge(r.ended(breaking(ctx, repoDir, b.Commit)), b, git)
}

// Judge completes r, the breaking check's result against b: it classifies
// the change and, for a pull request labelled SkipBreakingLabel, lets the
// break land (Skipped, its findings warnings) when no release holds a
// package it breaks, or refuses the label with a finding (LabelRefused)
// for each released package it would let break.
func Judge(r Result, b Baseline, git Git) Result {
	if r.Status == Errored || r.Status == Failed && len(r.Findings) == 0 {
		return r
	}
	guard := GuardLabel(git, brokenPackages(r.Findings))
	change := Classify(git, b.Commit, guard)
	r.Change = &change
	switch {
	case b.Labelled == "":
	case r.Status == Passed:
		r.Note = sentences(r.Note, b.Labelled+", but nothing breaks: the label is not needed")
	case len(guard.Refused) > 0:
		r.Findings = append(refusals(b.Labelled, r.Findings, git), r.Findings...)
	default:
		r.Status = Skipped
		r.Note = sentences(r.Note, fmt.Sprintf("%s: an intended break of %s, which no release holds, allowed (RELEASING.md, \"Breaking changes\")",
			b.Labelled, strings.Join(guard.Unreleased, ", ")))
	}
	return r
}

// refusals are the findings, one a released package the label would let
// break, that refuse it: each at the package's first broken file, naming
// the release that holds the package and the way out.
func refusals(labelled string, findings []protocheck.Finding, git Git) []protocheck.Finding {
	var out []protocheck.Finding
	for _, dir := range brokenPackages(findings) {
		r, ok := HeldBy(git, dir)
		if !ok {
			continue
		}
		file := ""
		for _, f := range findings {
			if strings.HasPrefix(f.Path, dir+"/") {
				file = f.Path
				break
			}
		}
		way := "a new major package beside it"
		if next := nextMajor(dir); next != "" {
			way = "a new major package, " + next + ", beside it"
		}
		out = append(out, protocheck.Finding{Path: file, Type: LabelRefused, Message: fmt.Sprintf(
			"%s, but %s is released (%s holds it) and consumers depend on it: the label cannot let it break. "+
				"Make the change in %s (README.md, \"How to change the contract\") and take the label off.",
			labelled, dir, r.Tag, way)})
	}
	return out
}

// runReleased is the breaking check against the last contract release,
// whatever the label: breaks that built up across several labelled pull
// requests, or in two that landed together, fail here. For the push of a
// release tag it is the release before it: release-api.yml refuses to
// publish a break of it.
func runReleased(ctx context.Context, repoDir string, ev Event, git Git) Result {
	r := Result{Check: "released"}
	rel, ok := LatestRelease(git, ev)
	if !ok {
		r.Status, r.Note = Skipped, "no contract release (api/vX.Y.Z tag) in the clone: nothing released to compare against"
		if ev.Push != nil && strings.HasPrefix(ev.Push.Ref, "refs/tags/"+ContractTagPrefix) {
			r.Note = fmt.Sprintf("no contract release before %s in the clone: it is the first, nothing released to compare against", strings.TrimPrefix(ev.Push.Ref, "refs/tags/"))
		}
		return r
	}
	r.Against = rel.Tag + ", the last contract release"
	return r.ended(breaking(ctx, repoDir, rel.Tag))
}

func breaking(ctx context.Context, repoDir, commit string) error {
	dir, cleanup, err := protocheck.Baseline(ctx, repoDir, commit)
	if err != nil {
		return err
	}
	defer cleanup()
	return protocheck.Breaking(ctx, repoDir, dir)
}

// sentences joins notes with "; ", leaving out empty ones.
func sentences(notes ...string) string {
	var kept []string
	for _, n := range notes {
		if n != "" {
			kept = append(kept, n)
		}
	}
	return strings.Join(kept, "; ")
}
