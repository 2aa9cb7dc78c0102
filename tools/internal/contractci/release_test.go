package contractci_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/acme/greeter/tools/internal/contractci"
	"github.com/acme/greeter/tools/internal/repotest"
)

const (
	v1 = "api/acme/greeter/v1"
	v2 = "api/acme/greeter/v2"
	v3 = "api/acme/greeter/v3"
	v4 = "api/acme/greeter/v4"
)

// released is a real clone with releases planted: v1 released in
// api/v1.0.0, v2 added and released as api/v1.1.0-rc.1, v3 added and held
// only by gen/go/v1.2.0, and tags that are not releases (api/v1,
// api/acme). Its HEAD (main) is the commit of gen/go/v1.2.0.
type released struct {
	dir  string
	git  func(args ...string) string
	head string
}

func newReleased(t *testing.T) released {
	t.Helper()
	dir := t.TempDir()
	git := gitIn(t, dir)
	git("init", "--quiet", "--initial-branch=main")
	commit := func(pkg, msg string) {
		repotest.WriteFile(t, dir, pkg+"/greeter.proto", "syntax = \"proto3\";\n")
		git("add", "-A")
		git("commit", "--quiet", "-m", msg)
	}
	repotest.WriteFile(t, dir, contractci.Changelog, "# Changelog\n\n## Unreleased\n\n- the first\n")
	commit(v1, "v1")
	git("tag", "api/v1.0.0")
	git("tag", "api/v1")
	commit(v2, "v2")
	git("tag", "api/v1.1.0-rc.1")
	git("tag", "api/acme")
	commit(v3, "v3")
	git("tag", "-a", "-m", "gen/go v1.2.0", "gen/go/v1.2.0")
	return released{dir: dir, git: git, head: git("rev-parse", "HEAD")}
}

func (c released) Git() contractci.Git { return contractci.GitAt(context.Background(), c.dir) }

func tagPush(tag string) contractci.Event {
	return contractci.Event{Name: "push", Push: &contractci.Push{Ref: "refs/tags/" + tag, Before: zero, After: mainTip, Created: true}}
}

const zero = "0000000000000000000000000000000000000000"

func TestReleases(t *testing.T) {
	t.Parallel()
	c := newReleased(t)
	g := c.Git()
	var tags []string
	for _, r := range contractci.Releases(g, contractci.ContractTagPrefix) {
		tags = append(tags, r.Tag)
	}
	if want := []string{"api/v1.1.0-rc.1", "api/v1.0.0"}; !slices.Equal(tags, want) {
		t.Errorf("Releases(api/) = %q, want %q: newest first, no tag that is not a version", tags, want)
	}
	for name, tc := range map[string]struct {
		ev   contractci.Event
		want string // "" for none
	}{
		"a pull request: the newest":                {ev: contractci.Event{Name: "pull_request"}, want: "api/v1.1.0-rc.1"},
		"outside Actions: the newest":               {want: "api/v1.1.0-rc.1"},
		"the release after a pre-release":           {ev: tagPush("api/v1.1.0"), want: "api/v1.1.0-rc.1"},
		"a pre-release: the release before it":      {ev: tagPush("api/v1.1.0-rc.1"), want: "api/v1.0.0"},
		"the first release: nothing before it":      {ev: tagPush("api/v1.0.0")},
		"a tag of another module: the newest":       {ev: tagPush("gen/go/v1.3.0"), want: "api/v1.1.0-rc.1"},
		"a push to main: the newest":                {ev: contractci.Event{Name: "push", Push: &contractci.Push{Ref: "refs/heads/main"}}, want: "api/v1.1.0-rc.1"},
		"a tag older than every release: none left": {ev: tagPush("api/v0.9.0")},
	} {
		t.Run("LatestRelease/"+name, func(t *testing.T) {
			r, ok := contractci.LatestRelease(g, tc.ev)
			if r.Tag != tc.want || ok != (tc.want != "") {
				t.Errorf("LatestRelease = %q, %v; want %q", r.Tag, ok, tc.want)
			}
		})
	}
	for dir, want := range map[string]string{
		v1: "api/v1.1.0-rc.1", v2: "api/v1.1.0-rc.1", v3: "gen/go/v1.2.0", v4: "",
		"api/acme/greeter": "", // only packages below it
	} {
		t.Run("HeldBy/"+dir, func(t *testing.T) {
			r, ok := contractci.HeldBy(g, dir)
			if r.Tag != want || ok != (want != "") {
				t.Errorf("HeldBy(%s) = %q, %v; want %q", dir, r.Tag, ok, want)
			}
		})
	}
	// The first release has nothing to be compared with: the check skips,
	// and says why, without running buf.
	r := contractci.Run(context.Background(), "released", c.dir, tagPush("api/v1.0.0"), g)
	if want := "no contract release before api/v1.0.0 in the clone: it is the first"; r.Status != contractci.Skipped || !strings.Contains(r.Note, want) {
		t.Errorf("released for the first release: %s %q, want skipped saying %q", r.Status, r.Note, want)
	}
	guard := contractci.GuardLabel(g, []string{v1, v3, v4})
	if want := []string{v1 + " (released in api/v1.1.0-rc.1)", v3 + " (released in gen/go/v1.2.0)"}; !slices.Equal(guard.Refused, want) {
		t.Errorf("GuardLabel refuses %q, want %q", guard.Refused, want)
	}
	if !slices.Equal(guard.Unreleased, []string{v4}) {
		t.Errorf("GuardLabel lets %q through, want only %s", guard.Unreleased, v4)
	}
}
