package contractci_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/acme/greeter/tools/internal/contractci"
	"github.com/acme/greeter/tools/internal/protocheck"
)

// fakeGitHub is the part of GitHub's REST API the comment uses, for
// acme/greeter: the comments of its pull requests, paged as GitHub pages
// them, and each pull request's head.
type fakeGitHub struct {
	mu       sync.Mutex
	comments map[int][]fakeComment // by pull request
	heads    map[int]string
	nextID   int64
	// failWith, when set, is the status of every answer.
	failWith int
	calls    []string
}

type fakeComment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
	User struct {
		Type string `json:"type"`
	} `json:"user"`
}

const token = "ghs_test"

// newFakeGitHub serves f on loopback until t ends.
func newFakeGitHub(t *testing.T, f *fakeGitHub) *contractci.GitHub {
	t.Helper()
	if f.comments == nil {
		f.comments = map[int][]fakeComment{}
	}
	f.nextID = 1000
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return contractci.NewGitHub(token, contractci.WithBaseURL(srv.URL+"/"), contractci.WithHTTPClient(srv.Client()))
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	answer := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	switch {
	case r.Header.Get("Authorization") != "Bearer "+token:
		answer(http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
		return
	case f.failWith != 0:
		answer(f.failWith, map[string]string{"message": "Resource not accessible by integration"})
		return
	}
	var body struct {
		Body string `json:"body"`
	}
	if r.Body != nil {
		json.NewDecoder(r.Body).Decode(&body)
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/repos/acme/greeter/"), "/")
	switch {
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "pulls":
		n, _ := strconv.Atoi(parts[1])
		if head, ok := f.heads[n]; ok {
			answer(http.StatusOK, map[string]any{"number": n, "head": map[string]string{"sha": head}})
			return
		}
	case len(parts) == 3 && parts[0] == "issues" && parts[2] == "comments":
		n, _ := strconv.Atoi(parts[1])
		if r.Method == http.MethodPost {
			f.nextID++
			c := fakeComment{ID: f.nextID, Body: body.Body}
			c.User.Type = "Bot"
			f.comments[n] = append(f.comments[n], c)
			answer(http.StatusCreated, c)
			return
		}
		perPage, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		all := f.comments[n]
		from, to := min((page-1)*perPage, len(all)), min(page*perPage, len(all))
		answer(http.StatusOK, all[from:to])
		return
	case r.Method == http.MethodPatch && len(parts) == 3 && parts[0] == "issues" && parts[1] == "comments":
		id, _ := strconv.ParseInt(parts[2], 10, 64)
		for n, cs := range f.comments {
			for i := range cs {
				if cs[i].ID == id {
					f.comments[n][i].Body = body.Body
					answer(http.StatusOK, f.comments[n][i])
					return
				}
			}
		}
	}
	answer(http.StatusNotFound, map[string]string{"message": "Not Found"})
}

// others are n comments of people, none of them the checks'.
func others(n int) []fakeComment {
	cs := make([]fakeComment, n)
	for i := range cs {
		cs[i] = fakeComment{ID: int64(i + 1), Body: fmt.Sprintf("LGTM %d", i)}
	}
	return cs
}

// resultsDir is a results directory as the checks leave it: breaking
// failed, the rest passed.
func resultsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, r := range []contractci.Result{
		{Check: "format", Status: contractci.Passed},
		{Check: "breaking", Status: contractci.Failed, Findings: renamed, Against: "8b6dbd3, the tip of main that pull request #42 merges into"},
	} {
		if err := contractci.Save(dir, r); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestComment(t *testing.T) {
	t.Parallel()
	const forkHead = "e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4"
	marked := fakeComment{ID: 120, Body: contractci.CommentMarker + "\nan old summary"}
	marked.User.Type = "Bot"
	quoted := fakeComment{ID: 7, Body: "> " + contractci.CommentMarker + "\nwhy does this fail?"}
	quoted.User.Type = "User"
	tests := map[string]struct {
		event, file string
		// existing, heads and failWith set up the fake API.
		existing map[int][]fakeComment
		heads    map[int]string
		failWith int
		// record is the PullRequestFile the fork's run left, for workflow_run.
		record string
		// want is what Comment says it did; wantErr its error, in part.
		want, wantErr string
		// on is the pull request the comment should be on (0: none);
		// comments how many comments it should have then.
		on, comments int
		calls        []string
	}{
		"the first run of a pull request: created": {
			event: "pull_request", file: "pull_request.json",
			want: "created the comment on pull request #42", on: 42, comments: 1,
			calls: []string{"GET /repos/acme/greeter/issues/42/comments", "POST /repos/acme/greeter/issues/42/comments"},
		},
		"a later run: the marked comment, on the second page, updated": {
			event: "pull_request", file: "pull_request.json",
			existing: map[int][]fakeComment{42: append(append(others(110), marked), others(30)...)},
			want:     "updated the comment on pull request #42", on: 42, comments: 141,
			calls: []string{"GET /repos/acme/greeter/issues/42/comments", "GET /repos/acme/greeter/issues/42/comments", "PATCH /repos/acme/greeter/issues/comments/120"},
		},
		"a person's comment quoting the marker: left alone": {
			event: "pull_request", file: "pull_request.json",
			existing: map[int][]fakeComment{42: {quoted}},
			want:     "created the comment on pull request #42", on: 42, comments: 2,
			calls: []string{"GET /repos/acme/greeter/issues/42/comments", "POST /repos/acme/greeter/issues/42/comments"},
		},
		"a fork's pull request: left to buf-comment.yml": {
			event: "pull_request", file: "pull_request_fork.json",
			want: "pull request #43 comes from the fork grace/greeter, whose token cannot comment: buf-comment.yml comments once this run ends",
		},
		"the workflow_run of a fork's pull request: created": {
			event: "workflow_run", file: "workflow_run_fork.json", record: `{"number": 43, "head_sha": "` + forkHead + `"}`,
			heads: map[int]string{43: forkHead},
			want:  "created the comment on pull request #43", on: 43, comments: 1,
			calls: []string{"GET /repos/acme/greeter/pulls/43", "GET /repos/acme/greeter/issues/43/comments", "POST /repos/acme/greeter/issues/43/comments"},
		},
		"a fork's run naming another pull request: refused": {
			event: "workflow_run", file: "workflow_run_fork.json", record: `{"number": 42, "head_sha": "` + forkHead + `"}`,
			heads:   map[int]string{42: mainTip},
			wantErr: "names pull request #42, whose head is 3f5e9a1, not the commit the run checked, e5f6a7b: no comment",
			calls:   []string{"GET /repos/acme/greeter/pulls/42"},
		},
		"a fork's run that left no record": {
			event: "workflow_run", file: "workflow_run_fork.json",
			wantErr: "the run left no pull_request.json",
		},
		"a push: no pull request": {
			event: "push", file: "push.json", want: "no pull request: nothing to comment on",
		},
		"the API fails": {
			event: "pull_request", file: "pull_request.json", failWith: http.StatusForbidden,
			wantErr: "GitHub API GET /repos/acme/greeter/issues/42/comments?per_page=100&page=1: 403 Resource not accessible by integration",
			calls:   []string{"GET /repos/acme/greeter/issues/42/comments"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeGitHub{comments: map[int][]fakeComment{}, heads: tc.heads, failWith: tc.failWith}
			for n, cs := range tc.existing {
				fake.comments[n] = append([]fakeComment(nil), cs...)
			}
			gh := newFakeGitHub(t, fake)
			dir := resultsDir(t)
			if tc.record != "" {
				if err := os.WriteFile(filepath.Join(dir, contractci.PullRequestFile), []byte(tc.record), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := contractci.Comment(context.Background(), readEvent(t, tc.event, tc.file), dir, gh, "https://github.com/acme/greeter/actions/runs/1")
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("got %q, %v; want the error %q", got, err, tc.wantErr)
			case tc.wantErr == "" && (err != nil || got != tc.want):
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			if strings.Join(fake.calls, "\n") != strings.Join(tc.calls, "\n") {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(fake.calls, "\n"), strings.Join(tc.calls, "\n"))
			}
			for n, cs := range fake.comments {
				want := len(tc.existing[n])
				if n == tc.on {
					want = tc.comments
				}
				if len(cs) != want {
					t.Errorf("pull request #%d has %d comments, want %d", n, len(cs), want)
				}
			}
			if tc.on == 0 {
				return
			}
			var ours []fakeComment
			for _, c := range fake.comments[tc.on] {
				if strings.Contains(c.Body, contractci.CommentMarker) && c.User.Type == "Bot" {
					ours = append(ours, c)
				}
			}
			if len(ours) != 1 || !strings.Contains(ours[0].Body, "### ❌ Contract checks failed: buf breaking") ||
				!strings.Contains(ours[0].Body, `changed name from "name" to "full_name"`) {
				t.Errorf("the checks' comments: %+v; want one, with the summary and the findings", ours)
			}
		})
	}
}

// TestPullRequestRecord: a pull request's run leaves its number and head
// for the workflow_run that comments for a fork, whether it comments
// itself or not.
func TestPullRequestRecord(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "not-yet")
	gh := newFakeGitHub(t, &fakeGitHub{})
	if _, err := contractci.Comment(context.Background(), readEvent(t, "pull_request", "pull_request_fork.json"), dir, gh, ""); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, contractci.PullRequestFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"number":43,"head_sha":"e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4"}`; string(data) != want {
		t.Errorf("%s = %s, want %s", contractci.PullRequestFile, data, want)
	}
}

// TestCommentBody: the comment lists every finding, past the summary's 50
// a check, and only when GitHub's limit on a comment is near lists fewer,
// saying how many more the log holds.
func TestCommentBody(t *testing.T) {
	t.Parallel()
	many := func(n int, message string) []contractci.Result {
		var fs []protocheck.Finding
		for i := 1; i <= n; i++ {
			fs = append(fs, protocheck.Finding{Path: proto, StartLine: i, Type: "COMMENT_FIELD", Message: message})
		}
		return []contractci.Result{{Check: "lint", Status: contractci.Failed, Findings: fs}}
	}
	body := contractci.CommentBody(many(80, "Field is not documented."), "https://github.com/acme/greeter/actions/runs/7")
	if !strings.HasPrefix(body, contractci.CommentMarker+"\n") || strings.Count(body, "Field is not documented.") != 80 ||
		strings.Contains(body, "more: see the step's log") || !strings.Contains(body, "[this run](https://github.com/acme/greeter/actions/runs/7)") {
		t.Errorf("the comment of 80 findings:\n%s", body)
	}
	body = contractci.CommentBody(many(400, strings.Repeat("x", 300)), "")
	if len(body) > 65536 || !strings.Contains(body, "more: see the step's log") || strings.Count(body, strings.Repeat("x", 300)) < 100 {
		t.Errorf("the comment of 400 long findings is %d bytes and lists %d", len(body), strings.Count(body, strings.Repeat("x", 300)))
	}
}
