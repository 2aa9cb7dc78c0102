package contractci

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// GitHub is the part of GitHub's REST API the pull request's comment
// needs: four calls. Plain net/http rather than an SDK: go-github is not
// among the modules tools pins, and a client of its size for four calls
// would be most of what this package builds; a base URL is all a test (or
// GitHub Enterprise) needs to point it elsewhere.
type GitHub struct {
	base   string
	token  string
	client *http.Client
}

// GitHubOption is a setting of NewGitHub.
type GitHubOption func(*GitHub)

// WithBaseURL sets the API's URL; the default is https://api.github.com.
// In Actions it is GITHUB_API_URL.
func WithBaseURL(url string) GitHubOption {
	return func(g *GitHub) { g.base = strings.TrimRight(url, "/") }
}

// WithHTTPClient sets the client that makes the calls; the default is an
// http.Client with a 30-second timeout.
func WithHTTPClient(c *http.Client) GitHubOption {
	return func(g *GitHub) { g.client = c }
}

// NewGitHub is a client of the API that authenticates with token (in
// Actions, the job's GITHUB_TOKEN).
func NewGitHub(token string, opts ...GitHubOption) *GitHub {
	g := &GitHub{base: "https://api.github.com", token: token, client: &http.Client{Timeout: 30 * time.Second}}
	for _, o := range opts {
		o(g)
	}
	return g
}

// APIError is a call GitHub answered with an error status.
type APIError struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("GitHub API %s %s: %d %s", e.Method, e.Path, e.Status, e.Message)
}

// call sends in (when not nil) as JSON to the API path and decodes the
// answer into out (when not nil).
func (g *GitHub) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return fmt.Errorf("GitHub API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("GitHub API %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var msg struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &msg) != nil || msg.Message == "" {
			msg.Message = http.StatusText(resp.StatusCode)
		}
		return &APIError{Method: method, Path: path, Status: resp.StatusCode, Message: msg.Message}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("GitHub API %s %s: read the answer: %w", method, path, err)
	}
	return nil
}

// issueComment is a comment of a pull request's conversation.
type issueComment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
	User struct {
		Type string `json:"type"`
	} `json:"user"`
}

// commentsPerPage is the most GitHub lists a page; maxCommentPages bounds
// the search for the marked comment (10,000 comments).
const (
	commentsPerPage = 100
	maxCommentPages = 100
)

// findComment is the first comment of pull request number in repo that a
// bot wrote (the workflow's token comments as github-actions[bot]) and
// whose body holds marker; false when there is none. A person's comment
// that quotes the marker is not the one to update, and could not be.
func (g *GitHub) findComment(ctx context.Context, repo string, number int, marker string) (issueComment, bool, error) {
	for page := 1; page <= maxCommentPages; page++ {
		var comments []issueComment
		path := fmt.Sprintf("/repos/%s/issues/%d/comments?per_page=%d&page=%d", repo, number, commentsPerPage, page)
		if err := g.call(ctx, http.MethodGet, path, nil, &comments); err != nil {
			return issueComment{}, false, err
		}
		for _, c := range comments {
			if c.User.Type == "Bot" && strings.Contains(c.Body, marker) {
				return c, true, nil
			}
		}
		if len(comments) < commentsPerPage {
			break
		}
	}
	return issueComment{}, false, nil
}

// Upsert makes body the comment of pull request number in repo that holds
// marker: it updates that comment, or creates it when there is none. It
// returns "created" or "updated".
func (g *GitHub) Upsert(ctx context.Context, repo string, number int, marker, body string) (string, error) {
	c, ok, err := g.findComment(ctx, repo, number, marker)
	if err != nil {
		return "", err
	}
	in := map[string]string{"body": body}
	if ok {
		return "updated", g.call(ctx, http.MethodPatch, fmt.Sprintf("/repos/%s/issues/comments/%d", repo, c.ID), in, nil)
	}
	return "created", g.call(ctx, http.MethodPost, fmt.Sprintf("/repos/%s/issues/%d/comments", repo, number), in, nil)
}

// PullRequestHead is the commit at the tip of pull request number in repo.
func (g *GitHub) PullRequestHead(ctx context.Context, repo string, number int) (string, error) {
	var pr struct {
		Head struct {
			SHA string `json:"sha"`
		} `json:"head"`
	}
	if err := g.call(ctx, http.MethodGet, fmt.Sprintf("/repos/%s/pulls/%d", repo, number), nil, &pr); err != nil {
		return "", err
	}
	return pr.Head.SHA, nil
}
