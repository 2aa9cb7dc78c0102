package contractci_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme/greeter/tools/internal/contractci"
)

// history is a made-up clone for ChooseBaseline: each commit with its first
// parent ("" for a root commit), and the names that resolve to commits.
type history struct {
	parents map[string]string
	names   map[string]string
}

func (h history) Commit(rev string) (string, bool) {
	if c, ok := h.names[rev]; ok {
		return c, true
	}
	_, ok := h.parents[rev]
	return rev, ok
}

func (h history) FirstParent(commit string) (string, bool) {
	p := h.parents[commit]
	return p, p != ""
}

func (h history) IsAncestor(a, b string) bool {
	for c := b; c != ""; c = h.parents[c] {
		if c == a {
			return true
		}
	}
	return false
}

// The made-up clone has no tags and no trees: the decisions that read them
// are tested on real clones (release_test.go).
func (history) Tags(string) []string            { return nil }
func (history) Files(string, string) []string   { return nil }
func (history) Changed(string, string) []string { return nil }
func (history) Show(string, string) (string, bool) {
	return "", false
}

// The commits of the payloads in testdata, and the history around them.
const (
	mainTip       = "3f5e9a1c7b2d4e6f8091a2b3c4d5e6f708192a3b"
	mainBefore    = "2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c"
	mainAfter     = "4d6e8f0a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e"
	branchTip     = "6f8a0b2c4d6e8f0a2b4c6d8e0f2a4b6c8d0e2f4a"
	branchParent  = "7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f"
	rootCommit    = "8a0b2c4d6e8f0a1b3c5d7e9f1a3b5c7d9e1f3a5b"
	forcedTip     = "0c2d4e6f8a0b2c4d6e8f0a2b4c6d8e0f2a4b6c8d"
	forcedParent  = "9d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b3c5d7e"
	forcedOldTip  = "1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e" // still held by another branch
	forcedLostTip = "9b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b7c" // in push_force.json: gone
)

var clone = history{
	parents: map[string]string{
		mainTip:      mainAfter,
		mainAfter:    mainBefore,
		mainBefore:   rootCommit,
		branchTip:    branchParent,
		branchParent: mainTip,
		forcedTip:    forcedParent,
		forcedParent: mainBefore,
		forcedOldTip: mainBefore,
		rootCommit:   "",
	},
	names: map[string]string{"main": mainTip, "HEAD": branchTip},
}

func readEvent(t *testing.T, name, file string) contractci.Event {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := contractci.ParseEvent(name, data)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestChooseBaseline runs the breaking check's decision for each event of
// testdata: which commit it compares against, or why it skips, and what it
// says about it.
func TestChooseBaseline(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		event, file string
		// want's What, Skip and Note are substrings of the decision's.
		want    contractci.Baseline
		wantErr string
	}{
		"pull request": {
			event: "pull_request", file: "pull_request.json",
			want: contractci.Baseline{Commit: mainTip, What: "3f5e9a1, the tip of main that pull request #42 merges into"},
		},
		// The check runs all the same: Judge decides whether the label
		// may let its break land.
		"pull request labelled buf skip breaking": {
			event: "pull_request", file: "pull_request_labeled.json",
			want: contractci.Baseline{Commit: mainTip, What: "the tip of main that pull request #42 merges into", Labelled: `pull request #42 is labelled "buf skip breaking"`},
		},
		"label taken off again": {
			event: "pull_request", file: "pull_request_unlabeled.json",
			want: contractci.Baseline{Commit: mainTip, What: "pull request #42"},
		},
		"pull request whose base the clone lacks": {
			event: "pull_request", file: "pull_request_base_not_fetched.json",
			wantErr: "the base of pull request #42, 5e7f9a1 (main), is not in the clone: check out with fetch-depth: 0",
		},
		"push": {
			event: "push", file: "push.json",
			want: contractci.Baseline{Commit: mainBefore, What: "2b4c6d8, the tip of main before the push"},
		},
		// A push is checked whatever it merged: the label is a pull
		// request's, and main's history records the break.
		"push that merged a labelled pull request": {
			event: "push", file: "push_merged_skip_label.json",
			want: contractci.Baseline{Commit: mainBefore, What: "the tip of main before the push"},
		},
		"push of a new branch": {
			event: "push", file: "push_new_branch.json",
			want: contractci.Baseline{
				Commit: branchParent, What: "7e9f1a3, the first parent of 6f8a0b2",
				Note: "the push created release/v1, so it has no commit before it: comparing against the pushed commit's first parent instead",
			},
		},
		"first push of a repository": {
			event: "push", file: "push_first_commit.json",
			want: contractci.Baseline{Skip: "the push created main, so it has no commit before it, and 8a0b2c4 is a first commit: there is nothing to compare against"},
		},
		"force push": {
			event: "push", file: "push_force.json",
			want: contractci.Baseline{
				Commit: forcedParent, What: "9d1e3f5, the first parent of 0c2d4e6",
				Note: "the commit before the push, 9b1c3d5, is not in the clone (a force push replaced it): comparing against the pushed commit's first parent instead",
			},
		},
		"force push whose old tip is still fetched": {
			event: "push", file: "push_force_fetched.json",
			want: contractci.Baseline{
				Commit: forcedParent, What: "9d1e3f5, the first parent of 0c2d4e6",
				Note: "the commit before the push, 1d3e5f7, is not an ancestor of 0c2d4e6 (a force push rewrote main)",
			},
		},
		"push that deleted a branch": {
			event: "push", file: "push_delete.json",
			want: contractci.Baseline{Skip: "the push deleted release/v0: there is no tree to check"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := contractci.ChooseBaseline(readEvent(t, tc.event, tc.file), clone)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got %+v, %v; want the error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkBaseline(t, got, tc.want)
		})
	}
}

func checkBaseline(t *testing.T, got, want contractci.Baseline) {
	t.Helper()
	if got.Commit != want.Commit {
		t.Errorf("Commit = %q, want %q (%+v)", got.Commit, want.Commit, got)
	}
	for _, field := range []struct{ name, got, want string }{
		{"What", got.What, want.What}, {"Skip", got.Skip, want.Skip}, {"Note", got.Note, want.Note}, {"Labelled", got.Labelled, want.Labelled},
	} {
		if field.want == "" && field.got != "" || !strings.Contains(field.got, field.want) {
			t.Errorf("%s = %q, want it to say %q", field.name, field.got, field.want)
		}
	}
}

func TestChooseBaselineOutsideActions(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		ev    contractci.Event
		clone history
		want  contractci.Baseline
	}{
		"no event": {
			clone: clone,
			want:  contractci.Baseline{Commit: mainAfter, What: "4d6e8f0, the commit before main"},
		},
		"an event without a baseline of its own": {
			ev:    contractci.Event{Name: "workflow_dispatch"},
			clone: clone,
			want:  contractci.Baseline{Commit: mainAfter, What: "the commit before main"},
		},
		"no main": {
			clone: history{parents: clone.parents, names: map[string]string{"HEAD": branchTip}},
			want:  contractci.Baseline{Commit: branchParent, What: "7e9f1a3, the commit before HEAD"},
		},
		"first commit": {
			clone: history{parents: clone.parents, names: map[string]string{"HEAD": rootCommit}},
			want:  contractci.Baseline{Skip: "HEAD is the first commit: there is nothing to compare against"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := contractci.ChooseBaseline(tc.ev, tc.clone)
			if err != nil {
				t.Fatal(err)
			}
			checkBaseline(t, got, tc.want)
		})
	}
}

func TestParseEventErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ event, payload, want string }{
		"not JSON":           {"push", "ref: main", "read the push event's payload"},
		"push without after": {"push", `{"ref": "refs/heads/main", "before": "` + mainBefore + `"}`, "no before or after"},
		"pull request without base": {"pull_request", `{"number": 1, "pull_request": {"number": 1}}`,
			"no pull_request.base.sha"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := contractci.ParseEvent(tc.event, []byte(tc.payload)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestGitAt runs the decisions of a new branch's push and a force push on
// a real clone: the forty zeros and a commit the clone lacks, both answered
// by git itself.
func TestGitAt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	git := gitIn(t, dir)
	git("init", "--quiet", "--initial-branch=main")
	git("commit", "--quiet", "--allow-empty", "-m", "first")
	first := git("rev-parse", "HEAD")
	git("commit", "--quiet", "--allow-empty", "-m", "second")
	second := git("rev-parse", "HEAD")
	git("checkout", "--quiet", "--orphan", "other")
	git("commit", "--quiet", "--allow-empty", "-m", "unrelated")
	unrelated := git("rev-parse", "HEAD")
	git("checkout", "--quiet", "main")

	g := contractci.GitAt(ctx, dir)
	if c, ok := g.Commit("main"); !ok || c != second {
		t.Errorf("Commit(main) = %s, %v; want %s", c, ok, second)
	}
	if p, ok := g.FirstParent(second); !ok || p != first {
		t.Errorf("FirstParent(second) = %s, %v; want %s", p, ok, first)
	}
	if p, ok := g.FirstParent(first); ok {
		t.Errorf("FirstParent(root) = %s, want none", p)
	}
	if !g.IsAncestor(first, second) || g.IsAncestor(unrelated, second) {
		t.Error("IsAncestor is wrong")
	}
	for _, rev := range []string{"0000000000000000000000000000000000000000", forcedLostTip, "--help", "no-such-branch"} {
		if c, ok := g.Commit(rev); ok {
			t.Errorf("Commit(%s) = %s, want none", rev, c)
		}
	}
	for name, tc := range map[string]struct {
		push contractci.Push
		want contractci.Baseline
	}{
		"push":       {contractci.Push{Ref: "refs/heads/main", Before: first, After: second}, contractci.Baseline{Commit: first, What: "the tip of main before the push"}},
		"new branch": {contractci.Push{Ref: "refs/heads/main", Before: "0000000000000000000000000000000000000000", After: second, Created: true}, contractci.Baseline{Commit: first, What: "the first parent of", Note: "the push created main"}},
		"force push": {contractci.Push{Ref: "refs/heads/main", Before: forcedLostTip, After: second, Forced: true}, contractci.Baseline{Commit: first, What: "the first parent of", Note: "is not in the clone"}},
		"rewritten":  {contractci.Push{Ref: "refs/heads/main", Before: unrelated, After: second, Forced: true}, contractci.Baseline{Commit: first, What: "the first parent of", Note: "is not an ancestor"}},
		"first push": {contractci.Push{Ref: "refs/heads/main", Before: "0000000000000000000000000000000000000000", After: first, Created: true}, contractci.Baseline{Skip: "is a first commit"}},
	} {
		push := tc.push
		got, err := contractci.ChooseBaseline(contractci.Event{Name: "push", Push: &push}, g)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Run(name, func(t *testing.T) { checkBaseline(t, got, tc.want) })
	}
}

// gitIn returns a function that runs git in dir, with a committer of its
// own, and returns what it printed; it fails t when git fails.
func gitIn(t *testing.T, dir string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
}
