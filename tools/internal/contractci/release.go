package contractci

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"golang.org/x/mod/semver"
)

// The tag prefixes of the releases that hold the contract: its own
// (release-api.yml ships the protos and both SDKs) and gen/go's, whose
// tagged tree holds the same protos and ships their Go packages.
const (
	ContractTagPrefix = "api/"
	GoTagPrefix       = "gen/go/"
)

// Release is one release tag.
type Release struct {
	// Tag is the tag, e.g. "api/v1.2.0".
	Tag string
	// Version is its version, e.g. "v1.2.0".
	Version string
}

// Releases are the tags of the clone named prefix + vX.Y.Z (or a
// pre-release of one, vX.Y.Z-rc.N), newest version first. Other tags under
// the prefix (api/acme, api/v1) are not releases and are left out.
func Releases(git Git, prefix string) []Release {
	var rs []Release
	for _, tag := range git.Tags(prefix + "v*") {
		v := strings.TrimPrefix(tag, prefix)
		if semver.Canonical(v) != v {
			continue
		}
		rs = append(rs, Release{Tag: tag, Version: v})
	}
	slices.SortFunc(rs, func(a, b Release) int { return semver.Compare(b.Version, a.Version) })
	return rs
}

// LatestRelease is the contract release the tree is compared with: the
// newest api/vX.Y.Z tag; for the push of such a tag (release-api.yml),
// the newest one before it. False when there is none.
func LatestRelease(git Git, ev Event) (Release, bool) {
	current := ""
	if ev.Push != nil {
		if tag, ok := strings.CutPrefix(ev.Push.Ref, "refs/tags/"+ContractTagPrefix); ok {
			current = tag
		}
	}
	for _, r := range Releases(git, ContractTagPrefix) {
		if current == "" || semver.Compare(r.Version, current) < 0 {
			return r, true
		}
	}
	return Release{}, false
}

// HeldBy is the newest contract release whose tree holds a proto file in
// the package directory dir (e.g. "api/acme/greeter/v1"), or failing that
// the newest gen/go release that does: someone may depend on that
// package. False when no release holds it.
func HeldBy(git Git, dir string) (Release, bool) {
	for _, r := range append(Releases(git, ContractTagPrefix), Releases(git, GoTagPrefix)...) {
		if slices.ContainsFunc(git.Files(r.Tag, dir), isProtoIn(dir)) {
			return r, true
		}
	}
	return Release{}, false
}

// isProtoIn matches a proto file directly in dir, not in a package below
// it: acme/greeter/v1 is not held by a release of acme/greeter/v1/internal.
func isProtoIn(dir string) func(string) bool {
	return func(file string) bool { return path.Dir(file) == dir && path.Ext(file) == ".proto" }
}

// Guard is the verdict on the label SkipBreakingLabel for a break.
type Guard struct {
	// Refused names each broken package a release holds, with the release;
	// empty when the label may stand.
	Refused []string
	// Unreleased are the broken packages no release holds.
	Unreleased []string
}

// GuardLabel decides whether the label may let a break land: only when no
// package it breaks is held by a release (RELEASING.md, "Breaking
// changes"). A package is the directory of a finding's file.
func GuardLabel(git Git, breaks []string) Guard {
	var g Guard
	for _, dir := range breaks {
		if r, ok := HeldBy(git, dir); ok {
			g.Refused = append(g.Refused, fmt.Sprintf("%s (released in %s)", dir, r.Tag))
		} else {
			g.Unreleased = append(g.Unreleased, dir)
		}
	}
	return g
}

// nextMajor is where a break of the package dir belongs instead: the
// package one major version up, api/acme/greeter/v1 → api/acme/greeter/v2;
// "" when dir does not end in a version.
func nextMajor(dir string) string {
	parent, last := path.Split(dir)
	var n int
	if _, err := fmt.Sscanf(last, "v%d", &n); err != nil || fmt.Sprintf("v%d", n) != last {
		return ""
	}
	return fmt.Sprintf("%sv%d", parent, n+1)
}
