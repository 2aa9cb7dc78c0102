package workflows_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/acme/greeter/tools/internal/repo"
)

func TestActionlint(t *testing.T) {
	t.Parallel()
	cmd, err := repo.ToolCommand(t.Context(), repo.TestRoot(t), "actionlint", "-no-color")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("actionlint: %v\n%s", err, out)
	}
}

// workflow is the part of a workflow file these tests read. `on` is decoded
// loosely: its shape varies between events.
type workflow struct {
	On map[string]struct {
		Tags     []string `yaml:"tags"`
		Branches []string `yaml:"branches"`
	} `yaml:"on"`
}

func readWorkflow(t *testing.T, name string) workflow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo.TestRoot(t), ".github", "workflows", name))
	if err != nil {
		t.Fatal(err)
	}
	var w workflow
	if err := yaml.Unmarshal(data, &w); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return w
}

// tagMatches reports whether a GitHub Actions tag filter matches tag. As in
// GitHub's filter syntax, path.Match's `*` does not cross a `/`.
func tagMatches(t *testing.T, filter, tag string) bool {
	t.Helper()
	ok, err := path.Match(filter, tag)
	if err != nil {
		t.Fatalf("bad filter %q: %v", filter, err)
	}
	return ok
}

// TestReleaseTriggers proves a release tag of one module starts that
// module's release workflow and no other.
func TestReleaseTriggers(t *testing.T) {
	t.Parallel()
	releases := map[string]string{ // workflow → module or contract (= tag prefix)
		"release-gen.yml":      "gen/go",
		"release-greeter.yml":  "services/greeter",
		"release-greetctl.yml": "clients/greetctl",
		// The contract: image, protos, docs, npm and Python packages.
		"release-api.yml": "api",
	}
	tags := []string{
		"gen/go/v1.0.0", "gen/go/v1.2.3-rc.1",
		"services/greeter/v1.0.0", "services/greeter/v2.0.0",
		"clients/greetctl/v1.0.0", "clients/greetctl/v0.9.1",
		"api/v1.0.0", "api/v1.2.3-rc.1",
		"v1.0.0", "tools/v1.0.0", "services/greeter-extra/v1.0.0", "gen/go/v2/v2.0.0",
		"api/acme/greeter/v1.0.0", "apis/v1.0.0", "sdk/ts/v1.0.0",
	}
	for file, module := range releases {
		w := readWorkflow(t, file)
		events := make([]string, 0, len(w.On))
		for event := range w.On {
			events = append(events, event)
		}
		if !slices.Equal(events, []string{"push"}) {
			t.Errorf("%s: triggered by %v, want push (tags) only", file, events)
			continue
		}
		push := w.On["push"]
		if len(push.Branches) > 0 || len(push.Tags) == 0 {
			t.Errorf("%s: push must filter on tags only, got branches %v tags %v", file, push.Branches, push.Tags)
		}
		for _, tag := range tags {
			matched := slices.ContainsFunc(push.Tags, func(f string) bool { return tagMatches(t, f, tag) })
			want := strings.HasPrefix(tag, module+"/v") && !strings.Contains(strings.TrimPrefix(tag, module+"/"), "/")
			if matched != want {
				t.Errorf("%s: tag %s starts it = %v, want %v", file, tag, matched, want)
			}
		}
	}
	// The shared build is only ever called by the release workflows above.
	shared := readWorkflow(t, "release-binary.yml")
	if _, ok := shared.On["workflow_call"]; !ok || len(shared.On) != 1 {
		t.Errorf("release-binary.yml must be triggered by workflow_call only, got %v", shared.On)
	}
}

// TestEveryModuleReleases keeps the release workflows and go.yml in step
// with the modules of the repository: a module added without a release path
// (or a reason never to release it), or left out of go.yml's matrix, fails
// here.
func TestEveryModuleReleases(t *testing.T) {
	t.Parallel()
	root := repo.TestRoot(t)
	out, err := exec.Command("git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard", "go.mod", "*/go.mod").Output()
	if err != nil {
		t.Fatal(err)
	}
	released := map[string]bool{"gen/go": true, "services/greeter": true, "clients/greetctl": true}
	// The toolchain and the end-to-end tests never ship.
	neverReleased := map[string]bool{"tools": true, "test": true}
	var modules []string
	for _, f := range strings.Fields(string(out)) {
		dir := path.Dir(f)
		modules = append(modules, dir)
		if !released[dir] && !neverReleased[dir] {
			t.Errorf("module %s has no release workflow", dir)
		}
	}
	var goYML struct {
		Jobs map[string]struct {
			Strategy struct {
				Matrix struct {
					Module []string `yaml:"module"`
				} `yaml:"matrix"`
			} `yaml:"strategy"`
		} `yaml:"jobs"`
	}
	data, err := os.ReadFile(filepath.Join(root, ".github", "workflows", "go.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &goYML); err != nil {
		t.Fatal(err)
	}
	matrix := goYML.Jobs["module"].Strategy.Matrix.Module
	slices.Sort(modules)
	slices.Sort(matrix)
	if !slices.Equal(modules, matrix) {
		t.Errorf("go.yml tests modules %q, the repository has %q", matrix, modules)
	}
}

// TestEveryPackageReleases does for the npm and Python packages what
// TestEveryModuleReleases does for Go modules: each package manifest is
// one of the contract's SDKs, released by release-api.yml (which builds
// them with `make dist` and publishes them), or a private test project
// that no registry may take.
func TestEveryPackageReleases(t *testing.T) {
	t.Parallel()
	root := repo.TestRoot(t)
	out, err := exec.Command("git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard",
		"package.json", "*/package.json", "pyproject.toml", "*/pyproject.toml").Output()
	if err != nil {
		t.Fatal(err)
	}
	released := map[string]bool{"sdk/ts/package.json": true, "sdk/python/pyproject.toml": true}
	private := map[string]bool{"test/e2e/sdk/node/package.json": true, "test/e2e/web/browser/package.json": true}
	found := map[string]bool{}
	for _, f := range strings.Fields(string(out)) {
		found[f] = true
		switch {
		case released[f]:
		case private[f]:
			var pkg struct {
				Private bool `json:"private"`
			}
			data, err := os.ReadFile(filepath.Join(root, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &pkg); err != nil || !pkg.Private {
				t.Errorf("%s is a test project: it must say \"private\": true, so npm never publishes it (%v)", f, err)
			}
		default:
			t.Errorf("package %s has no release path: release-api.yml releases sdk/ts and sdk/python only", f)
		}
	}
	for f := range released {
		if !found[f] {
			t.Errorf("%s is gone: update release-api.yml, `make dist` and this test", f)
		}
	}
	release, err := os.ReadFile(filepath.Join(root, ".github", "workflows", "release-api.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"make dist", "scripts/publish-api.sh", "SHA256SUMS"} {
		if !strings.Contains(string(release), step) {
			t.Errorf("release-api.yml does not run %s", step)
		}
	}
	// The publish step is rehearsed on every pull request.
	var dist struct {
		On map[string]any `yaml:"on"`
	}
	data, err := os.ReadFile(filepath.Join(root, ".github", "workflows", "api-dist.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &dist); err != nil {
		t.Fatal(err)
	}
	if prs, ok := dist.On["pull_request"]; !ok || prs != nil {
		t.Errorf("api-dist.yml must run on every pull request (no filters), got %v", dist.On["pull_request"])
	}
	if !strings.Contains(string(data), "scripts/publish-api.sh --dry-run") {
		t.Error("api-dist.yml does not run the publish step with --dry-run")
	}
}
