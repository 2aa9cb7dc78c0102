package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// repoWithChange is a git clone whose working tree changes a proto file
// of the commit it returns, and does not touch sdk/CHANGELOG.md: the
// changelog check fails on it. Without change, the working tree is the
// commit.
func repoWithChange(t *testing.T, change bool) (dir, base string) {
	t.Helper()
	dir = t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	write(t, filepath.Join(dir, "api", "acme", "greeter", "v1", "greeter.proto"), "syntax = \"proto3\";\n")
	write(t, filepath.Join(dir, "sdk", "CHANGELOG.md"), "# Changelog\n\n## Unreleased\n\n- the first\n")
	git("init", "--quiet", "--initial-branch=main")
	git("add", "-A")
	git("commit", "--quiet", "-m", "base")
	if change {
		write(t, filepath.Join(dir, "api", "acme", "greeter", "v1", "greeter.proto"), "syntax = \"proto3\";\nmessage A {}\n")
	}
	return dir, git("rev-parse", "HEAD")
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pullRequest is the payload of pull request #42 of acme/greeter into base.
func pullRequest(t *testing.T, base string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "event.json")
	write(t, path, fmt.Sprintf(`{"number": 42, "repository": {"full_name": "acme/greeter"},
		"pull_request": {"number": 42, "base": {"ref": "main", "sha": %q}, "head": {"sha": "b7d1e2f", "repo": {"full_name": "acme/greeter"}}}}`, base))
	return path
}

// TestRun runs the command as the workflow does, with an environment of
// its own: what it exits with, prints and leaves behind.
func TestRun(t *testing.T) {
	t.Parallel()
	dir, base := repoWithChange(t, true)
	prEvent := pullRequest(t, base)
	clean, cleanBase := repoWithChange(t, false)
	notJSON := filepath.Join(t.TempDir(), "event.json")
	write(t, notJSON, "ref: main")
	tests := map[string]struct {
		args []string
		env  map[string]string
		// dir is the repository, when not the changed one.
		dir string
		// code is the exit code; stdout and stderr hold these, in part.
		code           int
		stdout, stderr string
	}{
		"a check that fails: 1, annotated": {
			args: []string{"changelog"},
			env:  map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": prEvent},
			code: 1, stdout: "::error file=sdk/CHANGELOG.md,line=3,title=CHANGELOG entry CHANGELOG_ENTRY::api/acme/greeter/v1/greeter.proto changed",
		},
		"a check that passes: 0": {
			args: []string{"changelog"}, dir: clean,
			env:  map[string]string{"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": pullRequest(t, cleanBase)},
			code: 0, stdout: "CHANGELOG entry: passed",
		},
		"a check that is skipped: 0": {
			args: []string{"released"},
			env:  map[string]string{"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": prEvent},
			code: 0, stdout: "buf breaking (last release): skipped: no contract release",
		},
		"a check that cannot run: 2": {
			args: []string{"breaking"},
			env:  map[string]string{"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": pullRequest(t, "5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e3f")},
			code: 2, stdout: "buf breaking: could not run",
		},
		"an event file that cannot be read: 2": {
			args: []string{"lint"},
			env:  map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": filepath.Join(t.TempDir(), "missing.json")},
			code: 2, stderr: "contractci: GITHUB_EVENT_NAME is push but its payload cannot be read",
		},
		"an event file that is not JSON: 2": {
			args: []string{"lint"},
			env:  map[string]string{"GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": notJSON},
			code: 2, stderr: "contractci: read the push event's payload",
		},
		"no such check: 2": {
			args: []string{"vet"}, code: 2, stderr: `contractci: no check is called "vet"`,
		},
		"no argument: 2": {
			code: 2, stderr: "usage: go tool contractci [-results DIR] format|lint|breaking|released|changelog|drift|summary|comment",
		},
		"a bad flag: 2": {
			args: []string{"-result", "x", "lint"}, code: 2, stderr: "flag provided but not defined: -result",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			results := t.TempDir()
			in := dir
			if tc.dir != "" {
				in = tc.dir
			}
			stdout, stderr := runCommand(t, append([]string{"-results", results}, tc.args...), tc.env, in, tc.code)
			if !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stdout:\n%s\nstderr:\n%s\nwant %q and %q in them", stdout, stderr, tc.stdout, tc.stderr)
			}
			if len(tc.args) == 1 && tc.stderr == "" {
				if _, err := os.Stat(filepath.Join(results, tc.args[0]+".json")); err != nil {
					t.Errorf("the check left no result: %v", err)
				}
			}
		})
	}
}

// runCommand runs the command in dir with env, checks its exit code and
// returns what it printed.
func runCommand(t *testing.T, args []string, env map[string]string, dir string, code int) (string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	getenv := func(k string) string { return env[k] }
	if got := run(context.Background(), args, getenv, dir, &stdout, &stderr); got != code {
		t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", got, code, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String()
}

// TestSummaryFile: the summary is appended to $GITHUB_STEP_SUMMARY, after
// what other steps wrote there; results that cannot be read, or a summary
// file that cannot be written, exit 2.
func TestSummaryFile(t *testing.T) {
	t.Parallel()
	dir, base := repoWithChange(t, true)
	results := t.TempDir()
	env := map[string]string{"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": pullRequest(t, base)}
	runCommand(t, []string{"-results", results, "changelog"}, env, dir, 1)

	file := filepath.Join(t.TempDir(), "step_summary.md")
	write(t, file, "## an earlier step\n\n")
	stdout, _ := runCommand(t, []string{"-results", results, "summary"}, map[string]string{"GITHUB_STEP_SUMMARY": file}, dir, 0)
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if want := "## an earlier step\n\n" + stdout; string(got) != want || !strings.Contains(stdout, "### ❌ Contract checks failed: CHANGELOG entry") {
		t.Errorf("the summary file holds:\n%s\nwant:\n%s", got, want)
	}

	runCommand(t, []string{"-results", results, "summary"}, map[string]string{"GITHUB_STEP_SUMMARY": filepath.Join(t.TempDir(), "gone", "summary.md")}, dir, 2)
	write(t, filepath.Join(results, "lint.json"), "{not json")
	_, stderr := runCommand(t, []string{"-results", results, "summary"}, nil, dir, 2)
	if !strings.Contains(stderr, "contractci: lint:") {
		t.Errorf("stderr %q does not name the unreadable result", stderr)
	}
}

// TestCommentCommand: the comment is posted through GITHUB_API_URL with
// GITHUB_TOKEN; when the API fails, the command warns and exits 0.
func TestCommentCommand(t *testing.T) {
	t.Parallel()
	dir, base := repoWithChange(t, true)
	for name, tc := range map[string]struct {
		status int
		stdout string
	}{
		"created":         {status: http.StatusCreated, stdout: "contractci: created the comment on pull request #42\n"},
		"the API refuses": {status: http.StatusForbidden, stdout: "::warning title=contract checks comment::no comment on the pull request: GitHub API GET /repos/acme/greeter/issues/42/comments?per_page=100&page=1: 403 Forbidden; the job summary and the step logs hold the checks\n"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var (
				mu     sync.Mutex
				posted string
			)
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.Header.Get("Authorization") != "Bearer ghs_test" || tc.status != http.StatusCreated:
					w.WriteHeader(tc.status)
				case r.Method == http.MethodGet:
					fmt.Fprint(w, "[]")
				default:
					body, _ := io.ReadAll(r.Body)
					mu.Lock()
					posted = string(body)
					mu.Unlock()
					w.WriteHeader(http.StatusCreated)
					fmt.Fprint(w, `{"id": 1}`)
				}
			}))
			t.Cleanup(api.Close)
			results := t.TempDir()
			env := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": pullRequest(t, base),
				"GITHUB_API_URL": api.URL, "GITHUB_TOKEN": "ghs_test", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "7"}
			runCommand(t, []string{"-results", results, "changelog"}, env, dir, 1)
			stdout, _ := runCommand(t, []string{"-results", results, "comment"}, env, dir, 0)
			if stdout != tc.stdout {
				t.Errorf("stdout %q, want %q", stdout, tc.stdout)
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.status == http.StatusCreated && (!strings.Contains(posted, "CHANGELOG entry") || !strings.Contains(posted, "actions/runs/7")) {
				t.Errorf("posted %s", posted)
			}
		})
	}
}
