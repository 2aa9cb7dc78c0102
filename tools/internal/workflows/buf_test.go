package workflows_test

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/acme/greeter/tools/internal/contractci"
	"github.com/acme/greeter/tools/internal/repo"
)

// TestContractChecks keeps buf.yml in step with contractci: every check a
// step of its own (GitHub shows ten error annotations a step) that runs
// whatever the steps before it found, then the summary and the comment;
// and the label
// "buf skip breaking" runs the workflow again when it is added or taken
// off.
func TestContractChecks(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(repo.TestRoot(t), ".github", "workflows", "buf.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var w struct {
		On struct {
			PullRequest struct {
				Types []string `yaml:"types"`
			} `yaml:"pull_request"`
			Push struct {
				Branches []string `yaml:"branches"`
			} `yaml:"push"`
		} `yaml:"on"`
		Env  map[string]string `yaml:"env"`
		Jobs map[string]struct {
			Steps []struct {
				If  string `yaml:"if"`
				Run string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(data, &w); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"opened", "synchronize", "reopened", "labeled", "unlabeled"} {
		if !slices.Contains(w.On.PullRequest.Types, typ) {
			t.Errorf("buf.yml does not run on pull_request %s", typ)
		}
	}
	if w.Env["GOWORK"] != "${{ github.workspace }}/"+repo.ToolchainWork {
		t.Errorf("buf.yml's GOWORK is %q: go tool contractci runs in the toolchain's workspace, %s", w.Env["GOWORK"], repo.ToolchainWork)
	}
	if !slices.Equal(w.On.Push.Branches, []string{"main"}) {
		t.Errorf("buf.yml runs on pushes to %q, want main", w.On.Push.Branches)
	}
	var runs []string
	for _, step := range w.Jobs["buf"].Steps {
		cmd, ok := strings.CutPrefix(step.Run, "go tool contractci ")
		if !ok {
			continue
		}
		runs = append(runs, cmd)
		if !strings.Contains(step.If, "!cancelled()") {
			t.Errorf("the step of contractci %s runs only when every step before it passed: its if is %q", cmd, step.If)
		}
	}
	var want []string
	for _, c := range contractci.Checks {
		want = append(want, c.Name)
	}
	if want = append(want, "summary", "comment"); !slices.Equal(runs, want) {
		t.Errorf("buf.yml runs contractci %q, want %q in that order", runs, want)
	}
}

// TestContractTriggers: the checks run for a change to anything they read,
// for pull requests and pushes alike, and a pull request's new commits
// cancel its run in progress while every push to main runs to the end.
func TestContractTriggers(t *testing.T) {
	t.Parallel()
	var w struct {
		On map[string]struct {
			Paths []string `yaml:"paths"`
		} `yaml:"on"`
		Concurrency struct {
			Group            string `yaml:"group"`
			CancelInProgress bool   `yaml:"cancel-in-progress"`
		} `yaml:"concurrency"`
	}
	data, err := os.ReadFile(filepath.Join(repo.TestRoot(t), ".github", "workflows", "buf.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &w); err != nil {
		t.Fatal(err)
	}
	prs, pushes := w.On["pull_request"].Paths, w.On["push"].Paths
	if !slices.Equal(prs, pushes) {
		t.Errorf("buf.yml filters pull requests by %q but pushes by %q: a change one runs the checks for, the other skips", prs, pushes)
	}
	for file, want := range map[string]bool{
		"api/acme/greeter/v1/greeter.proto":         true,
		"buf.yaml":                                  true,
		"buf.gen.ts.yaml":                           true,
		"gen/go/acme/greeter/v1/greeter.pb.go":      true,
		"sdk/CHANGELOG.md":                          true,
		"sdk/ts/package-lock.json":                  true,
		"docs/api/acme/greeter/v1/greeter.md":       true,
		"tools/internal/contractci/check.go":        true,
		"Makefile":                                  true, // the targets drift and protodeps run
		".ci/apt-packages":                          true, // the protoc behind drift
		".ci/install-sdk-tools":                     true,
		".github/workflows/buf.yml":                 true,
		"services/greeter/cmd/greeter/main.go":      false,
		"README.md":                                 false,
		"test/e2e/sdk/node/package-lock.json":       false,
		"api-notes.md":                              false,
		".github/workflows/release-api.yml":         false,
		"clients/greetctl/cmd/greetctl/greetctl.go": false,
	} {
		for event, filters := range map[string][]string{"pull_request": prs, "push": pushes} {
			if got := slices.ContainsFunc(filters, func(f string) bool { return pathMatches(t, f, file) }); got != want {
				t.Errorf("a %s changing %s runs the checks = %v, want %v", event, file, got, want)
			}
		}
	}
	if !w.Concurrency.CancelInProgress || !strings.Contains(w.Concurrency.Group, "github.event.pull_request.number") ||
		!strings.Contains(w.Concurrency.Group, "github.sha") {
		t.Errorf("buf.yml's concurrency is %+v: a pull request's runs share a group and cancel each other; each push has its own (github.sha)", w.Concurrency)
	}
}

// pathMatches reports whether a GitHub Actions paths filter matches file:
// `**` matches any run of characters, `*` any run without a `/`.
func pathMatches(t *testing.T, filter, file string) bool {
	t.Helper()
	var re strings.Builder
	re.WriteString("^")
	for i := 0; i < len(filter); i++ {
		switch {
		case strings.HasPrefix(filter[i:], "**"):
			re.WriteString(".*")
			i++
		case filter[i] == '*':
			re.WriteString("[^/]*")
		default:
			re.WriteString(regexp.QuoteMeta(filter[i : i+1]))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(file)
}

// TestReleaseRefusesBreak: release-api.yml compares the tree with the
// previous release, with the history and tags to find it, before it builds
// or publishes anything.
func TestReleaseRefusesBreak(t *testing.T) {
	t.Parallel()
	var w struct {
		Jobs map[string]struct {
			Steps []struct {
				Uses string         `yaml:"uses"`
				With map[string]any `yaml:"with"`
				Run  string         `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	data, err := os.ReadFile(filepath.Join(repo.TestRoot(t), ".github", "workflows", "release-api.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &w); err != nil {
		t.Fatal(err)
	}
	released, dist, fullClone := -1, -1, false
	for i, step := range w.Jobs["release"].Steps {
		switch {
		case strings.HasPrefix(step.Uses, "actions/checkout@"):
			fullClone = step.With["fetch-depth"] == 0
		case step.Run == "go tool contractci released":
			released = i
		case strings.HasPrefix(step.Run, "make dist") && dist < 0:
			dist = i
		}
	}
	if !fullClone {
		t.Error("release-api.yml checks out without fetch-depth: 0: the previous release's tag is not in the clone")
	}
	if released < 0 || dist < 0 || released > dist {
		t.Errorf("release-api.yml runs `go tool contractci released` at step %d and `make dist` at step %d: the check must come first", released, dist)
	}
}

// TestForkComment: a fork's pull request gets its comment from
// buf-comment.yml, started when its run of buf.yml completes, which runs
// main's code (never the fork's) with the least a comment needs; buf.yml
// leaves it the results.
func TestForkComment(t *testing.T) {
	t.Parallel()
	type step struct {
		If   string         `yaml:"if"`
		Uses string         `yaml:"uses"`
		With map[string]any `yaml:"with"`
		Run  string         `yaml:"run"`
	}
	type job struct {
		If          string            `yaml:"if"`
		Permissions map[string]string `yaml:"permissions"`
		Steps       []step            `yaml:"steps"`
	}
	var buf, comment struct {
		Name string `yaml:"name"`
		On   map[string]struct {
			Workflows []string `yaml:"workflows"`
			Types     []string `yaml:"types"`
		} `yaml:"on"`
		Permissions map[string]string `yaml:"permissions"`
		Jobs        map[string]job    `yaml:"jobs"`
	}
	root := repo.TestRoot(t)
	for file, w := range map[string]any{"buf.yml": &buf, "buf-comment.yml": &comment} {
		data, err := os.ReadFile(filepath.Join(root, ".github", "workflows", file))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(data, w); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if file == "buf-comment.yml" && strings.Contains(string(data), "head_sha") {
			t.Error("buf-comment.yml names the fork's commit: it must run main's code only")
		}
	}
	run, ok := comment.On["workflow_run"]
	if len(comment.On) != 1 || !ok || !slices.Equal(run.Workflows, []string{buf.Name}) || !slices.Equal(run.Types, []string{"completed"}) {
		t.Errorf("buf-comment.yml runs on %+v, want only the completed runs of %q", comment.On, buf.Name)
	}
	if len(comment.Permissions) != 0 {
		t.Errorf("buf-comment.yml's default permissions are %v, want none", comment.Permissions)
	}
	j := comment.Jobs["comment"]
	if want := map[string]string{"contents": "read", "actions": "read", "pull-requests": "write"}; !maps.Equal(j.Permissions, want) {
		t.Errorf("buf-comment.yml's job may %v, want exactly %v", j.Permissions, want)
	}
	if !strings.Contains(j.If, "head_repository.full_name != github.repository") || !strings.Contains(j.If, "event == 'pull_request'") {
		t.Errorf("buf-comment.yml's job runs if %q: only for a fork's pull request", j.If)
	}
	var downloads, comments int
	for _, s := range j.Steps {
		switch {
		case strings.HasPrefix(s.Uses, "actions/checkout@") && (s.With["ref"] != nil || s.With["repository"] != nil):
			t.Errorf("buf-comment.yml checks out %v: only main, the default", s.With)
		case strings.HasPrefix(s.Uses, "actions/download-artifact@") && s.With["name"] == "contractci":
			downloads++
		case s.Run == "go tool contractci comment":
			comments++
		}
	}
	if downloads != 1 || comments != 1 {
		t.Errorf("buf-comment.yml downloads the results %d times and comments %d times, want once each", downloads, comments)
	}
	b := buf.Jobs["buf"]
	if want := map[string]string{"contents": "read", "pull-requests": "write"}; !maps.Equal(b.Permissions, want) {
		t.Errorf("buf.yml's job may %v, want exactly %v", b.Permissions, want)
	}
	uploads := slices.IndexFunc(b.Steps, func(s step) bool {
		return strings.HasPrefix(s.Uses, "actions/upload-artifact@") && s.With["name"] == "contractci" &&
			strings.Contains(s.If, "github.event.pull_request.head.repo.full_name != github.repository")
	})
	if uploads < 0 {
		t.Error("buf.yml uploads no results named contractci for a fork's pull request")
	}
}
