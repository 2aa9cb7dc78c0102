package contractci

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Git is what choosing a baseline asks of the clone.
type Git interface {
	// Commit resolves rev to its full commit hash; false when the clone
	// has no such commit.
	Commit(rev string) (string, bool)
	// FirstParent is the first parent of commit; false for a root commit.
	FirstParent(commit string) (string, bool)
	// IsAncestor reports whether commit a is b or an ancestor of b.
	IsAncestor(a, b string) bool
	// Tags are the clone's tags that match the glob pattern.
	Tags(pattern string) []string
	// Files are the files of the tree of rev below dir.
	Files(rev, dir string) []string
	// Changed are the files below dir that the working tree changed, added
	// (untracked ones too) or removed since commit.
	Changed(commit, dir string) []string
	// Show is the file at path in the tree of rev; false when it has none.
	Show(rev, path string) (string, bool)
}

// Baseline is what the breaking check compares the tree against, or why it
// does not run.
type Baseline struct {
	// Commit is the full hash of the baseline; empty when Skip is set.
	Commit string
	// What says, for people, which commit Commit is.
	What string
	// Skip is why the breaking check does not run; empty when it does.
	Skip string
	// Note says why the baseline is not the event's own (a push whose
	// "before" the clone cannot use); empty when it is.
	Note string
	// Labelled says the pull request is labelled SkipBreakingLabel; empty
	// when it is not. The check still runs: GuardLabel decides whether the
	// label may let its break land.
	Labelled string
}

// ChooseBaseline decides what the breaking check of ev compares against:
//
//   - a pull request: its base commit, the tip of the branch it merges
//     into (the merge commit that Actions checks out has it as first
//     parent); Labelled says so when it is labelled SkipBreakingLabel.
//   - a push: the ref's commit before the push. When the push created the
//     ref (before is all zeros) or rewrote it (before is not in the clone,
//     or not an ancestor of the pushed commit), the pushed commit's first
//     parent instead; skipped when that does not exist either. A push
//     never skips for a label.
//   - outside Actions (and any other event): the commit before main's tip,
//     or before HEAD where there is no main, as `make breaking` does.
//
// It fails only when a pull request's base is not in the clone: a checkout
// without history, which no fallback would make right.
func ChooseBaseline(ev Event, git Git) (Baseline, error) {
	switch {
	case ev.PullRequest != nil:
		pr := ev.PullRequest
		commit, ok := git.Commit(pr.BaseSHA)
		if !ok {
			return Baseline{}, fmt.Errorf("the base of pull request #%d, %s (%s), is not in the clone: check out with fetch-depth: 0", pr.Number, short(pr.BaseSHA), pr.BaseRef)
		}
		b := Baseline{Commit: commit, What: fmt.Sprintf("%s, the tip of %s that pull request #%d merges into", short(commit), pr.BaseRef, pr.Number)}
		if pr.labelled(SkipBreakingLabel) {
			b.Labelled = fmt.Sprintf("pull request #%d is labelled %q", pr.Number, SkipBreakingLabel)
		}
		return b, nil
	case ev.Push != nil:
		return pushBaseline(ev.Push, git), nil
	}
	for _, rev := range []string{"main", "HEAD"} {
		if tip, ok := git.Commit(rev); ok {
			if parent, ok := git.FirstParent(tip); ok {
				return Baseline{Commit: parent, What: fmt.Sprintf("%s, the commit before %s", short(parent), rev)}, nil
			}
			return Baseline{Skip: fmt.Sprintf("%s is the first commit: there is nothing to compare against", rev)}, nil
		}
	}
	return Baseline{Skip: "the repository has no commit yet: there is nothing to compare against"}, nil
}

func pushBaseline(push *Push, git Git) Baseline {
	branch := strings.TrimPrefix(push.Ref, "refs/heads/")
	if push.Deleted || push.After == zeroSHA {
		return Baseline{Skip: fmt.Sprintf("the push deleted %s: there is no tree to check", branch)}
	}
	after, ok := git.Commit(push.After)
	if !ok {
		after, _ = git.Commit("HEAD")
	}
	var why string
	switch before, ok := git.Commit(push.Before); {
	case push.Before == zeroSHA:
		why = fmt.Sprintf("the push created %s, so it has no commit before it", branch)
	case !ok:
		why = fmt.Sprintf("the commit before the push, %s, is not in the clone (a force push replaced it)", short(push.Before))
	case !git.IsAncestor(before, after):
		why = fmt.Sprintf("the commit before the push, %s, is not an ancestor of %s (a force push rewrote %s)", short(before), short(after), branch)
	default:
		return Baseline{Commit: before, What: fmt.Sprintf("%s, the tip of %s before the push", short(before), branch)}
	}
	parent, ok := git.FirstParent(after)
	if !ok {
		return Baseline{Skip: why + fmt.Sprintf(", and %s is a first commit: there is nothing to compare against", short(after))}
	}
	return Baseline{
		Commit: parent,
		What:   fmt.Sprintf("%s, the first parent of %s", short(parent), short(after)),
		Note:   why + ": comparing against the pushed commit's first parent instead",
	}
}

// short is a commit hash as people read it.
func short(commit string) string {
	if len(commit) > 7 {
		return commit[:7]
	}
	return commit
}

// GitAt is Git for the clone at dir.
func GitAt(ctx context.Context, dir string) Git { return cloneGit{ctx: ctx, dir: dir} }

type cloneGit struct {
	ctx context.Context
	dir string
}

func (g cloneGit) git(args ...string) (string, bool) {
	cmd := exec.CommandContext(g.ctx, "git", args...)
	cmd.Dir = g.dir
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err == nil
}

func (g cloneGit) Commit(rev string) (string, bool) {
	if rev == zeroSHA {
		return "", false
	}
	return g.git("rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
}

func (g cloneGit) FirstParent(commit string) (string, bool) {
	return g.Commit(commit + "^1")
}

func (g cloneGit) IsAncestor(a, b string) bool {
	_, ok := g.git("merge-base", "--is-ancestor", a, b)
	return ok
}

func (g cloneGit) Tags(pattern string) []string {
	out, _ := g.git("tag", "--list", "--end-of-options", pattern)
	return lines(out)
}

func (g cloneGit) Files(rev, dir string) []string {
	out, ok := g.git("ls-tree", "-r", "--name-only", "--end-of-options", rev, "--", dir)
	if !ok {
		return nil
	}
	return lines(out)
}

func (g cloneGit) Changed(commit, dir string) []string {
	changed, _ := g.git("diff", "--name-only", "--no-renames", commit, "--", dir)
	untracked, _ := g.git("ls-files", "--others", "--exclude-standard", "--", dir)
	return append(lines(changed), lines(untracked)...)
}

// lines are the lines of git's output, none for none.
func lines(out string) []string {
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

func (g cloneGit) Show(rev, path string) (string, bool) {
	cmd := exec.CommandContext(g.ctx, "git", "show", "--end-of-options", rev+":"+path)
	cmd.Dir = g.dir
	out, err := cmd.Output()
	return string(out), err == nil
}
