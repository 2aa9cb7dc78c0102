package contractci

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/acme/greeter/tools/internal/protocheck"
)

// ChangeKind is what a change does to the contract, and so which release
// it asks for (RELEASING.md, "Versions").
type ChangeKind string

// The kinds of change, from none to the one that is never allowed.
const (
	// NoChange leaves api/ as it was: a patch release at most.
	NoChange ChangeKind = "none"
	// Additive changes api/ compatibly (a field, an RPC, a comment, a new
	// first package): a minor release.
	Additive ChangeKind = "additive"
	// NewMajor adds a package one major version up, beside the one it
	// replaces: a minor release, since nothing existing changes.
	NewMajor ChangeKind = "major"
	// UnreleasedBreak breaks only packages no release holds: allowed with
	// the label SkipBreakingLabel.
	UnreleasedBreak ChangeKind = "unreleased-break"
	// ReleasedBreak breaks a package a release holds: never allowed.
	ReleasedBreak ChangeKind = "released-break"
)

// Change is how the breaking check classifies a change against its
// baseline.
type Change struct {
	Kind ChangeKind `json:"kind"`
	// Packages are the package directories the kind is about: the new
	// major packages, or the broken ones (with their release, for
	// ReleasedBreak); for Additive the changed ones.
	Packages []string `json:"packages,omitempty"`
}

// Classify classifies the working tree's change to the contract since the
// commit base, given the packages the breaking check found broken (g).
func Classify(git Git, base string, g Guard) Change {
	switch {
	case len(g.Refused) > 0:
		return Change{Kind: ReleasedBreak, Packages: g.Refused}
	case len(g.Unreleased) > 0:
		return Change{Kind: UnreleasedBreak, Packages: g.Unreleased}
	}
	changed := packagesOf(protosIn(git.Changed(base, protocheck.ContractPath)))
	if len(changed) == 0 {
		return Change{Kind: NoChange}
	}
	var majors []string
	for _, dir := range changed {
		if slices.ContainsFunc(git.Files(base, dir), isProtoIn(dir)) {
			continue // the package was there before
		}
		if last := path.Base(dir); last != "v1" && nextMajor(dir) != "" {
			majors = append(majors, dir)
		}
	}
	if len(majors) > 0 {
		return Change{Kind: NewMajor, Packages: majors}
	}
	return Change{Kind: Additive, Packages: changed}
}

// String is the change as the summary and the pull request's comment say it.
func (c Change) String() string {
	pkgs := strings.Join(c.Packages, ", ")
	switch c.Kind {
	case NoChange:
		return "no contract change: nothing in api/ changed (a patch release at most)"
	case Additive:
		return "additive: " + pkgs + " changed compatibly (a minor release)"
	case NewMajor:
		return "new major package " + pkgs + ", beside the one it replaces (a minor release: nothing released changes)"
	case UnreleasedBreak:
		return fmt.Sprintf("breaking in %s, which no release holds (allowed only with the label %q)", pkgs, SkipBreakingLabel)
	case ReleasedBreak:
		return "breaking in " + pkgs + ": never allowed; make the change in a new major package"
	}
	return string(c.Kind)
}

// protosIn are the proto files among files.
func protosIn(files []string) []string {
	var protos []string
	for _, f := range files {
		if path.Ext(f) == ".proto" {
			protos = append(protos, f)
		}
	}
	return protos
}

// packagesOf are the package directories of files, sorted, each once.
func packagesOf(files []string) []string {
	var dirs []string
	for _, f := range files {
		dirs = append(dirs, path.Dir(f))
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

// brokenPackages are the package directories of the breaking check's
// findings.
func brokenPackages(findings []protocheck.Finding) []string {
	files := make([]string, 0, len(findings))
	for _, f := range findings {
		files = append(files, f.Path)
	}
	return packagesOf(files)
}
