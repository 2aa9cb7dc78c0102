package contractci_test

import (
	"context"
	"strings"
	"testing"

	"github.com/acme/greeter/tools/internal/contractci"
	"github.com/acme/greeter/tools/internal/repotest"
)

// TestChangelog runs the changelog check for pull requests on real clones:
// a contract change needs a new line under "## Unreleased".
func TestChangelog(t *testing.T) {
	t.Parallel()
	const field = "syntax = \"proto3\";\nmessage A {}\n"
	for name, tc := range map[string]struct {
		proto, changelog string // "" leaves it as it is
		status           contractci.Status
		line             int
		message          string
	}{
		"no contract change": {changelog: "# Changelog\n", status: contractci.Passed},
		"a change and a line": {proto: field, changelog: "# Changelog\n\n## Unreleased\n\n- the first\n- `A`: new message.\n",
			status: contractci.Passed},
		"a change without a line": {proto: field, status: contractci.Failed, line: 3,
			message: `api/acme/greeter/v1/greeter.proto changed, but sdk/CHANGELOG.md has no new line under "## Unreleased": add one saying what changed for consumers`},
		"a line moved, none added": {proto: field, changelog: "# Changelog\n\n## Unreleased\n- the first\n\n## v1.0.0 (2026-01-01)\n", status: contractci.Failed, line: 3},
		"a line added to a released section": {proto: field, changelog: "# Changelog\n\n## Unreleased\n\n- the first\n\n## v1.0.0\n\n- new\n",
			status: contractci.Failed, line: 3},
		"no Unreleased section": {proto: field, changelog: "# Changelog\n\n## v1.1.0\n\n- the first\n", status: contractci.Failed,
			message: `has no new line in a section "## Unreleased" below the title`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := newReleased(t)
			if tc.proto != "" {
				repotest.WriteFile(t, c.dir, v1+"/greeter.proto", tc.proto)
			}
			if tc.changelog != "" {
				repotest.WriteFile(t, c.dir, contractci.Changelog, tc.changelog)
			}
			ev := contractci.Event{Name: "pull_request", PullRequest: &contractci.PullRequest{Number: 42, BaseRef: "main", BaseSHA: c.head}}
			r := contractci.Run(context.Background(), "changelog", c.dir, ev, c.Git())
			if r.Status != tc.status {
				t.Fatalf("got %s %+v, want %s", r.Status, r, tc.status)
			}
			if tc.status != contractci.Failed {
				return
			}
			if len(r.Findings) != 1 {
				t.Fatalf("findings %+v, want one", r.Findings)
			}
			f := r.Findings[0]
			if f.Path != contractci.Changelog || f.StartLine != tc.line || f.Type != contractci.ChangelogMissing || !strings.Contains(f.Message, tc.message) {
				t.Errorf("finding %+v, want at %s:%d saying %q", f, contractci.Changelog, tc.line, tc.message)
			}
		})
	}
}
