// Package contractci runs the contract checks of a pull request or a push
// as people who use buf-action expect to see them on GitHub, and more:
// every finding an annotation at its file and line, a table of the checks
// in the job summary and in the pull request's one comment, the change
// classified, a break let through only for a pull request labelled "buf
// skip breaking" and only where no release holds the package, the last
// release a baseline beside the pull request's base (or for a push, a
// commit before it that exists), and a CHANGELOG line for every contract
// change.
//
// The decisions live here, and the workflow (.github/workflows/buf.yml)
// only calls `go tool contractci CHECK`, because a workflow cannot run
// here: these decisions are tested with GitHub's event payloads instead.
package contractci

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

// SkipBreakingLabel is the pull-request label that skips the breaking
// check: an intended break. buf-action's name for it, so it means the same
// here as in every repository that uses buf-action.
const SkipBreakingLabel = "buf skip breaking"

// zeroSHA is GitHub's "before" of a push that created its branch.
const zeroSHA = "0000000000000000000000000000000000000000"

// Event is what the checks need of the GitHub Actions event of a run.
type Event struct {
	// Name is the event: "pull_request", "push", or "" outside GitHub
	// Actions.
	Name string
	// PullRequest is set for a pull_request event.
	PullRequest *PullRequest
	// Push is set for a push event.
	Push *Push
	// WorkflowRun is set for a workflow_run event: the run of the checks
	// that a fork's pull request started, for its comment.
	WorkflowRun *WorkflowRun
	// Repository is the repository the run belongs to, "owner/name".
	Repository string
}

// PullRequest is the part of a pull_request payload the checks read.
type PullRequest struct {
	Number int
	// BaseRef and BaseSHA are the branch the pull request merges into and
	// its commit when the event happened.
	BaseRef string
	BaseSHA string
	Labels  []string
	// HeadRepo is the repository its commits come from, "owner/name": a
	// fork's when it is not the event's Repository. HeadSHA is its tip.
	HeadRepo, HeadSHA string
}

// WorkflowRun is the part of a workflow_run payload the comment reads.
type WorkflowRun struct {
	// Event is what started the run, e.g. "pull_request".
	Event string
	// HeadRepo is the repository of the commit it ran on, "owner/name";
	// HeadSHA that commit.
	HeadRepo, HeadSHA string
	// URL is the run's page.
	URL string
}

// Push is the part of a push payload the checks read.
type Push struct {
	// Ref is the pushed ref, e.g. "refs/heads/main".
	Ref string
	// Before is the ref's commit before the push: zeroSHA when the push
	// created the ref, and after a force push a commit the clone may not
	// have. After is the pushed commit: zeroSHA when the push deleted the
	// ref.
	Before, After            string
	Created, Deleted, Forced bool
}

// payload is the JSON of a pull_request or push event that Event reads.
type payload struct {
	PullRequest *struct {
		Number int `json:"number"`
		Base   struct {
			Ref string `json:"ref"`
			SHA string `json:"sha"`
		} `json:"base"`
		Labels []struct {
			Name string `json:"name"`
		} `json:"labels"`
		Head struct {
			SHA  string   `json:"sha"`
			Repo repoName `json:"repo"`
		} `json:"head"`
	} `json:"pull_request"`
	WorkflowRun *struct {
		Event          string   `json:"event"`
		HeadSHA        string   `json:"head_sha"`
		HeadRepository repoName `json:"head_repository"`
		HTMLURL        string   `json:"html_url"`
	} `json:"workflow_run"`
	Repository repoName `json:"repository"`
	Ref        string   `json:"ref"`
	Before     string   `json:"before"`
	After      string   `json:"after"`
	Created    bool     `json:"created"`
	Deleted    bool     `json:"deleted"`
	Forced     bool     `json:"forced"`
}

type repoName struct {
	FullName string `json:"full_name"`
}

// ParseEvent reads the payload of the event name (GITHUB_EVENT_NAME; the
// payload is the file at GITHUB_EVENT_PATH). Events other than
// pull_request, push and workflow_run keep only their name.
func ParseEvent(name string, data []byte) (Event, error) {
	ev := Event{Name: name}
	if name != "pull_request" && name != "push" && name != "workflow_run" {
		return ev, nil
	}
	var p payload
	if err := json.Unmarshal(data, &p); err != nil {
		return Event{}, fmt.Errorf("read the %s event's payload: %w", name, err)
	}
	ev.Repository = p.Repository.FullName
	switch name {
	case "workflow_run":
		if p.WorkflowRun == nil || p.WorkflowRun.HeadSHA == "" {
			return Event{}, fmt.Errorf("the workflow_run event's payload has no workflow_run.head_sha")
		}
		w := p.WorkflowRun
		ev.WorkflowRun = &WorkflowRun{Event: w.Event, HeadRepo: w.HeadRepository.FullName, HeadSHA: w.HeadSHA, URL: w.HTMLURL}
	case "pull_request":
		if p.PullRequest == nil || p.PullRequest.Base.SHA == "" {
			return Event{}, fmt.Errorf("the pull_request event's payload has no pull_request.base.sha")
		}
		pr := &PullRequest{Number: p.PullRequest.Number, BaseRef: p.PullRequest.Base.Ref, BaseSHA: p.PullRequest.Base.SHA,
			HeadRepo: p.PullRequest.Head.Repo.FullName, HeadSHA: p.PullRequest.Head.SHA}
		for _, l := range p.PullRequest.Labels {
			pr.Labels = append(pr.Labels, l.Name)
		}
		ev.PullRequest = pr
	case "push":
		if p.Before == "" || p.After == "" {
			return Event{}, fmt.Errorf("the push event's payload has no before or after")
		}
		ev.Push = &Push{Ref: p.Ref, Before: p.Before, After: p.After, Created: p.Created, Deleted: p.Deleted, Forced: p.Forced}
	}
	return ev, nil
}

// EventFromEnv reads the event of the GitHub Actions run this process is
// part of, from GITHUB_EVENT_NAME and GITHUB_EVENT_PATH as getenv (e.g.
// os.Getenv) gives them; outside Actions it is the zero Event.
func EventFromEnv(getenv func(string) string) (Event, error) {
	name := getenv("GITHUB_EVENT_NAME")
	if name == "" {
		return Event{}, nil
	}
	path := getenv("GITHUB_EVENT_PATH")
	data, err := os.ReadFile(path)
	if err != nil {
		return Event{}, fmt.Errorf("GITHUB_EVENT_NAME is %s but its payload cannot be read: %w", name, err)
	}
	return ParseEvent(name, data)
}

// labelled reports whether the pull request carries label.
func (pr *PullRequest) labelled(label string) bool {
	return slices.ContainsFunc(pr.Labels, func(l string) bool { return strings.EqualFold(l, label) })
}
