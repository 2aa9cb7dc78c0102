// Package buildlist proves that a binary links exactly the module versions
// its own module resolves: what `go build` of that module selects with
// GOWORK=off, from its go.mod and go.sum alone, with gen/go as a user
// outside this repository gets it. The workspace of a module can only stand
// in for that if it selects the same versions; these checks are how the
// tests know.
package buildlist

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"

	"github.com/acme/greeter/test/harness/repo"
)

// localVersion is what build info records as the version of a module
// replaced by a directory.
const localVersion = "(devel)"

// GenModule is the module path of the generated code; the shipped modules
// link the local copy (a directory replacement) where a release links the
// published version.
const GenModule = "github.com/acme/greeter/gen/go"

// Own returns the build list of the module in moduleDir (relative to the
// repository root) as resolved outside any workspace: module path to
// version. The toolchain's `go tool modproxy exec` publishes the local
// gen/go as its required version first (it fails when the module's go.sum
// does not record that content: run `make tidy`).
func Own(ctx context.Context, root, moduleDir string) (map[string]string, error) {
	cmd, err := repo.ToolCommand(ctx, root, "modproxy", "exec", moduleDir, "go", "list", "-m", "-json", "all")
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err = cmd.Run(); err != nil {
		return nil, fmt.Errorf("GOWORK=off go list -m all in %s: %w\n%s", moduleDir, err, &stderr)
	}
	versions := map[string]string{}
	dec := json.NewDecoder(&stdout)
	for {
		var m struct {
			Path, Version string
			Main          bool
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list -m -json all in %s: %w", moduleDir, err)
		}
		if !m.Main {
			versions[m.Path] = m.Version
		}
	}
	return versions, nil
}

// Mismatches compares the dependencies recorded in the binary at path (by
// `go build`) with own, a build list from Own, and describes every
// difference: a module at another version, or one own does not have. gen/go
// may be the local directory at the version own requires, or that version
// itself (a release build). No difference returns nil. A binary that records
// no dependencies (a test binary: `go test` leaves them out) is an error,
// not a pass: use TestMismatches for tests.
func Mismatches(path string, own map[string]string) ([]string, error) {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(info.Deps) == 0 {
		return nil, fmt.Errorf("%s records no dependencies to compare", path)
	}
	var linked []module
	for _, d := range info.Deps {
		m := module{path: d.Path, version: d.Version}
		if d.Path == GenModule && d.Version == localVersion && d.Replace == nil {
			// Built in the root workspace, where gen/go is one of the
			// workspace's modules: the local copy, standing in for the
			// version own requires.
			m.version, m.local = own[GenModule], true
		}
		if d.Replace != nil {
			m.replace = d.Replace.Path + " " + d.Replace.Version
			m.local = d.Replace.Version == localVersion
		}
		linked = append(linked, m)
	}
	return compare(linked, own), nil
}

// TestMismatches is Mismatches for the tests of the module in moduleDir:
// the modules of every package its tests link, as `go test ./...` there
// resolves them (through the root go.work for a shipped module), compared
// with own. A workspace module (gen/go in the root workspace) is the local
// copy and has no module line here; the binaries' check covers it.
func TestMismatches(ctx context.Context, moduleDir string, own map[string]string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-test", "-f",
		`{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{with .Replace}}{{.Path}}{{end}}{{end}}{{end}}`, "./...")
	cmd.Dir = moduleDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go list -deps -test ./... in %s: %w\n%s", moduleDir, err, &stderr)
	}
	seen := map[string]bool{}
	var linked []module
	for _, line := range strings.Split(stdout.String(), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || seen[f[0]] {
			continue // the standard library and the main module have no module line
		}
		seen[f[0]] = true
		m := module{path: f[0], version: f[1]}
		if len(f) == 3 {
			m.replace = f[2]
			// A directory replacement is a path, never a module path
			// with a version.
			m.local = strings.HasPrefix(f[2], ".") || filepath.IsAbs(f[2])
		}
		linked = append(linked, m)
	}
	if len(linked) == 0 {
		return nil, fmt.Errorf("the tests in %s link no module to compare", moduleDir)
	}
	return compare(linked, own), nil
}

// module is a linked module version, and what replaced it.
type module struct {
	path, version string
	replace       string // "" when not replaced
	local         bool   // replaced by a directory
}

func compare(linked []module, own map[string]string) []string {
	var diffs []string
	for _, d := range linked {
		want, ok := own[d.path]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s %s is linked but not in the module's own build list", d.path, d.version))
		case d.version != want:
			diffs = append(diffs, fmt.Sprintf("%s: linked %s, the module's own go.mod resolves %s", d.path, d.version, want))
		case d.replace != "" && (d.path != GenModule || !d.local):
			diffs = append(diffs, fmt.Sprintf("%s %s is replaced by %s", d.path, d.version, d.replace))
		}
	}
	slices.Sort(diffs)
	return diffs
}

// RequiredGen returns the version of gen/go that the go.mod in moduleDir
// requires. (Asking the go command would answer for the workspace, where
// gen/go is a workspace module with no version.) It is
// tools/internal/modproxy.RequiredVersion for this module, which cannot
// import the toolchain's (harness/repo says why).
func RequiredGen(moduleDir string) (string, error) {
	name := filepath.Join(moduleDir, "go.mod")
	data, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	f, err := modfile.ParseLax(name, data, nil)
	if err != nil {
		return "", err
	}
	for _, r := range f.Require {
		if r.Mod.Path == GenModule {
			return r.Mod.Version, nil
		}
	}
	return "", fmt.Errorf("%s does not require %s", name, GenModule)
}
