package contractci_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/acme/greeter/tools/internal/contractci"
	"github.com/acme/greeter/tools/internal/protocheck"
	"github.com/acme/greeter/tools/internal/repotest"
)

// TestRun runs every check on a copy of the repository made a git clone
// whose base is released as api/v1.0.0, with a pull request that plants a
// fault for each (a field renamed, a field undocumented, a brace
// unformatted, none of it regenerated, no CHANGELOG line), as a pull
// request, as the same pull request labelled "buf skip breaking" (refused:
// v1 is released), and as the push that created its branch.
func TestRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := repotest.Copy(t)
	git := gitIn(t, dir)
	git("init", "--quiet", "--initial-branch=main")
	git("add", "-A")
	git("commit", "--quiet", "-m", "base")
	base := git("rev-parse", "HEAD")
	// The base is released: the label cannot let v1 break, and the
	// release is the second baseline.
	git("tag", "api/v1.0.0")

	repotest.Replace(t, dir, proto, "  // name is who to greet; see the package comment for its rules.\n  string name = 1 [",
		"  // name is who to greet; see the package comment for its rules.\n  string full_name = 1 [")
	repotest.Replace(t, dir, proto, "message SayHelloResponse {\n  // message is the greeting, e.g. \"Hello, Ada!\".\n  string message = 1;\n",
		"message SayHelloResponse{\n  // message is the greeting, e.g. \"Hello, Ada!\".\n  string message = 1;\n  string locale = 2;\n")
	git("checkout", "--quiet", "-b", "ada/locale")
	git("commit", "--quiet", "-am", "api: locale")
	head := git("rev-parse", "HEAD")
	lineOf := func(prefix string) int { return lineOfIn(t, dir, proto, prefix) }

	pr := readEvent(t, "pull_request", "pull_request.json")
	pr.PullRequest.BaseSHA = base
	labelled := readEvent(t, "pull_request", "pull_request_labeled.json")
	labelled.PullRequest.BaseSHA = base
	newBranch := readEvent(t, "push", "push_new_branch.json")
	newBranch.Push.After = head

	type want struct {
		status contractci.Status
		// findings are Type@line, in the order found.
		findings []string
		against  string
		note     string
		change   contractci.ChangeKind
	}
	unchanged := map[string]want{
		"format": {status: contractci.Failed, findings: []string{protocheck.FormatType + "@" + itoa(lineOf("message SayHelloResponse{"))}},
		"lint":   {status: contractci.Failed, findings: []string{"COMMENT_FIELD@" + itoa(lineOf("  string locale = 2;"))}},
		"drift": {status: contractci.Failed, findings: []string{
			"differs@0", "differs@0", "differs@0", "differs@0", "differs@0", "differs@0"}},
		"changelog": {status: contractci.Failed, findings: []string{contractci.ChangelogMissing + "@" + itoa(lineOfIn(t, dir, contractci.Changelog, "## Unreleased"))},
			against: base[:7] + ", the tip of main that pull request #42 merges into"},
	}
	renamedAt := itoa(lineOf("  string full_name = 1 ["))
	tests := map[string]struct {
		ev       contractci.Event
		breaking want
	}{
		"pull request": {ev: pr, breaking: want{
			status: contractci.Failed, findings: []string{"FIELD_SAME_JSON_NAME@" + renamedAt, "FIELD_SAME_NAME@" + renamedAt},
			against: base[:7] + ", the tip of main that pull request #42 merges into", change: contractci.ReleasedBreak}},
		"labelled buf skip breaking": {ev: labelled, breaking: want{
			status: contractci.Failed, findings: []string{contractci.LabelRefused + "@0", "FIELD_SAME_JSON_NAME@" + renamedAt, "FIELD_SAME_NAME@" + renamedAt},
			against: base[:7] + ", the tip of main that pull request #42 merges into"}},
		"push of the new branch": {ev: newBranch, breaking: want{
			status: contractci.Failed, findings: []string{"FIELD_SAME_JSON_NAME@" + renamedAt, "FIELD_SAME_NAME@" + renamedAt},
			against: base[:7] + ", the first parent of " + head[:7], note: "the push created release/v1"}},
	}
	for _, name := range []string{"format", "lint", "drift", "changelog"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			check(t, contractci.Run(ctx, name, dir, pr, contractci.GitAt(ctx, dir)), unchanged[name].status, unchanged[name].findings, unchanged[name].against, "")
		})
	}
	// Labelled or not, the last release is a baseline, and v1 breaks.
	for name, ev := range map[string]contractci.Event{"pull request": pr, "labelled": labelled} {
		t.Run("released/"+name, func(t *testing.T) {
			t.Parallel()
			check(t, contractci.Run(ctx, "released", dir, ev, contractci.GitAt(ctx, dir)), contractci.Failed,
				[]string{"FIELD_SAME_JSON_NAME@" + renamedAt, "FIELD_SAME_NAME@" + renamedAt}, "api/v1.0.0, the last contract release", "")
		})
	}
	for name, tc := range tests {
		t.Run("breaking/"+name, func(t *testing.T) {
			t.Parallel()
			r := contractci.Run(ctx, "breaking", dir, tc.ev, contractci.GitAt(ctx, dir))
			check(t, r, tc.breaking.status, tc.breaking.findings, tc.breaking.against, tc.breaking.note)
			if want := tc.breaking.change; want != "" && (r.Change == nil || r.Change.Kind != want) {
				t.Errorf("the change is %+v, want %s", r.Change, want)
			}
		})
	}
}

func check(t *testing.T, r contractci.Result, status contractci.Status, findings []string, against, note string) {
	t.Helper()
	var got []string
	for _, f := range r.Findings {
		got = append(got, f.Type+"@"+itoa(f.StartLine))
		if f.Path == "" {
			t.Errorf("a finding names no file: %+v", f)
		}
	}
	if r.Status != status || !slices.Equal(got, findings) || r.Against != against || !strings.Contains(r.Note, note) || note == "" && r.Note != "" {
		t.Errorf("got %s %q against %q (%s); want %s %q against %q (%s)", r.Status, got, r.Against, r.Note, status, findings, against, note)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// lineOfIn is the number of the first line of the file rel below dir that
// starts with prefix.
func lineOfIn(t *testing.T, dir, rel, prefix string) int {
	t.Helper()
	for i, l := range strings.Split(repotest.ReadFile(t, dir, rel), "\n") {
		if strings.HasPrefix(l, prefix) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line %q", rel, prefix)
	return 0
}
