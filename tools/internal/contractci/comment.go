package contractci

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// CommentMarker is the hidden line that marks the checks' comment on a
// pull request, so each run finds and updates the one comment rather than
// adding another.
const CommentMarker = "<!-- contractci: the contract checks of this pull request -->"

// PullRequestFile is what a pull request's run leaves beside its results:
// its number and head commit, for the workflow_run job that comments on a
// fork's pull request (buf-comment.yml).
const PullRequestFile = "pull_request.json"

// maxCommentBytes keeps the comment within what GitHub takes (65,536
// characters), with room to spare.
const maxCommentBytes = 60000

// CommentBody is the comment of results: the marker, the summary with
// every finding (those on lines the pull request did not change too, which
// no annotation shows on its diff) as far as GitHub's limit allows, and a
// link to the run.
func CommentBody(results []Result, runURL string) string {
	footer := "\n---\n<sub>One comment, updated on every run of the contract checks"
	if runURL != "" {
		footer += fmt.Sprintf(": [this run](%s)", runURL)
	}
	footer += ". The job summary and the step logs hold the same.</sub>\n"
	for limit := math.MaxInt; ; limit /= 2 {
		body := CommentMarker + "\n" + summary(results, limit) + footer
		if len(body) <= maxCommentBytes || limit == 0 {
			return body
		}
	}
}

// pullRequestRecord is the JSON of PullRequestFile.
type pullRequestRecord struct {
	Number  int    `json:"number"`
	HeadSHA string `json:"head_sha"`
}

// Comment posts the results in dir as the sticky comment of the event's
// pull request through gh, linking runURL (this run's page), and says what
// it did. Where it cannot comment,
// it says why and does nothing:
//
//   - pull_request: it leaves PullRequestFile in dir, then comments, unless
//     the pull request comes from a fork, whose run's token can only read:
//     then the workflow_run job of buf-comment.yml comments for it.
//   - workflow_run: the run of a fork's pull request. Its number comes from
//     the run's PullRequestFile (dir is the run's artifact), which the fork
//     wrote: it is trusted only when that pull request's head is the
//     commit the run checked.
//   - anything else (a push): there is no pull request.
func Comment(ctx context.Context, ev Event, dir string, gh *GitHub, runURL string) (string, error) {
	var number int
	switch {
	case ev.PullRequest != nil:
		pr := ev.PullRequest
		data, err := json.Marshal(pullRequestRecord{Number: pr.Number, HeadSHA: pr.HeadSHA})
		if err != nil {
			return "", err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, PullRequestFile), data, 0o644); err != nil {
			return "", err
		}
		if pr.HeadRepo != "" && !strings.EqualFold(pr.HeadRepo, ev.Repository) {
			return fmt.Sprintf("pull request #%d comes from the fork %s, whose token cannot comment: buf-comment.yml comments once this run ends", pr.Number, pr.HeadRepo), nil
		}
		number = pr.Number
	case ev.WorkflowRun != nil:
		run := ev.WorkflowRun
		if run.Event != "pull_request" {
			return fmt.Sprintf("the run was started by %s, not a pull request: nothing to comment on", run.Event), nil
		}
		if strings.EqualFold(run.HeadRepo, ev.Repository) {
			return "the pull request is not from a fork: its own run commented", nil
		}
		data, err := os.ReadFile(filepath.Join(dir, PullRequestFile))
		if err != nil {
			return "", fmt.Errorf("the run left no %s: %w", PullRequestFile, err)
		}
		var rec pullRequestRecord
		if err := json.Unmarshal(data, &rec); err != nil || rec.Number <= 0 {
			return "", fmt.Errorf("the run's %s names no pull request: %.200q", PullRequestFile, data)
		}
		head, err := gh.PullRequestHead(ctx, ev.Repository, rec.Number)
		if err != nil {
			return "", err
		}
		if head != run.HeadSHA {
			return "", fmt.Errorf("the run's %s names pull request #%d, whose head is %s, not the commit the run checked, %s: no comment", PullRequestFile, rec.Number, short(head), short(run.HeadSHA))
		}
		number, runURL = rec.Number, run.URL
	default:
		return "no pull request: nothing to comment on", nil
	}
	results, err := Load(dir)
	if err != nil {
		return "", err
	}
	did, err := gh.Upsert(ctx, ev.Repository, number, CommentMarker, CommentBody(results, runURL))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s the comment on pull request #%d", did, number), nil
}
