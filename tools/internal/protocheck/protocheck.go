// Package protocheck runs the contract checks of this repository: buf lint,
// buf format, buf breaking against a git ref, and the generated-code drift
// check (gen/go, the TypeScript and Python SDKs, the API reference). Each
// check runs `go tool buf` in a repository directory with the toolchain's
// workspace (repo.ToolCommand), so it uses the buf version pinned in
// tools/go.mod and works on a copy of the repository as well as on the
// checkout itself.
package protocheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/acme/greeter/tools/internal/protodeps"
	"github.com/acme/greeter/tools/internal/repo"
	"github.com/acme/greeter/tools/internal/sdktools"
)

// GenDir is where buf.gen.yaml writes generated Go code, relative to the
// repository root.
const GenDir = "gen/go"

// Error is a failed check: the tool ran and reported problems. Other errors
// mean a check could not run at all.
type Error struct {
	// Check names the check, e.g. "buf lint".
	Check string
	// Output is what the tool printed, or the findings as text.
	Output string
	// Findings are the problems one by one, each at its file (and line,
	// where it has one); empty when the tool failed without naming any.
	Findings []Finding
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s failed:\n%s", e.Check, strings.TrimRight(e.Output, "\n"))
}

// Finding is one problem a check found. Its JSON form is buf's
// (--error-format json), so buf's findings decode into it as they are.
type Finding struct {
	// Path is the file, relative to the repository root.
	Path string `json:"path"`
	// StartLine to EndColumn locate the problem in Path, counted from 1;
	// zero when it concerns the whole file (a generated file that drifted).
	StartLine   int `json:"start_line,omitempty"`
	StartColumn int `json:"start_column,omitempty"`
	EndLine     int `json:"end_line,omitempty"`
	EndColumn   int `json:"end_column,omitempty"`
	// Type is buf's rule (FIELD_SAME_NAME, COMMENT_FIELD, COMPILE, ...), or
	// FORMAT, or for generated code DriftMissing, DriftDiffers or DriftStale.
	Type string `json:"type"`
	// Message says what is wrong, and where it is not obvious, what to do.
	Message string `json:"message"`
}

// String is the finding as buf prints it in its text format:
// path:line:column:message.
func (f Finding) String() string {
	switch {
	case f.StartLine == 0:
		return f.Path + ": " + f.Message
	case f.StartColumn == 0:
		return fmt.Sprintf("%s:%d:%s", f.Path, f.StartLine, f.Message)
	}
	return fmt.Sprintf("%s:%d:%d:%s", f.Path, f.StartLine, f.StartColumn, f.Message)
}

// findingsText is findings, one a line, as buf prints them.
func findingsText(findings []Finding) string {
	var b strings.Builder
	for _, f := range findings {
		b.WriteString(strings.ReplaceAll(f.String(), "\n", "\n    "))
		b.WriteByte('\n')
	}
	return b.String()
}

// Buf runs `go tool buf args...` in repoDir and returns its combined output.
// A non-zero exit is reported as *Error.
func Buf(ctx context.Context, repoDir string, args ...string) (string, error) {
	cmd, err := repo.ToolCommand(ctx, repoDir, append([]string{"buf"}, args...)...)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return out.String(), &Error{Check: "buf " + strings.Join(args, " "), Output: out.String()}
	}
	if err != nil {
		return out.String(), fmt.Errorf("run buf %s in %s: %w", strings.Join(args, " "), repoDir, err)
	}
	return out.String(), nil
}

// bufFindings runs `go tool buf args... --error-format json` in repoDir.
// When buf fails, the *Error carries its findings, with relative paths
// joined to under (the directory the input's paths are relative to).
func bufFindings(ctx context.Context, repoDir, under string, args ...string) error {
	args = append(args, "--error-format", "json")
	cmd, err := repo.ToolCommand(ctx, repoDir, append([]string{"buf"}, args...)...)
	if err != nil {
		return err
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return fmt.Errorf("run buf %s in %s: %w", strings.Join(args, " "), repoDir, err)
	}
	if err == nil {
		return nil
	}
	checkErr := &Error{Check: "buf " + strings.Join(args[:len(args)-2], " ")}
	var other strings.Builder
	for _, line := range strings.Split(stdout.String(), "\n") {
		var f Finding
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &f) == nil && f.Path != "" {
			f.Path = path.Join(under, f.Path)
			checkErr.Findings = append(checkErr.Findings, f)
		} else if strings.TrimSpace(line) != "" {
			other.WriteString(line + "\n")
		}
	}
	checkErr.Output = findingsText(checkErr.Findings) + other.String() + stderr.String()
	return checkErr
}

// Lint runs buf lint on the workspace in repoDir.
func Lint(ctx context.Context, repoDir string) error {
	return bufFindings(ctx, repoDir, "", "lint")
}

// FormatCheck fails if buf format would change any proto file in repoDir.
// Its findings are the places buf format would change, each run of changed
// lines on its own, with what buf format would write there.
func FormatCheck(ctx context.Context, repoDir string) error {
	out, err := Buf(ctx, repoDir, "format", "--diff", "--exit-code")
	var checkErr *Error
	if errors.As(err, &checkErr) {
		findings, parseErr := formatFindings(out)
		if parseErr != nil {
			return fmt.Errorf("%w (and its diff could not be read: %v)", err, parseErr)
		}
		checkErr.Findings = findings
	}
	return err
}

// ContractPath is the part of the workspace that is the published contract:
// what images hold and what breaking checks compare.
const ContractPath = "api"

// Breaking checks the workspace in repoDir against a baseline: a directory
// laid out like the repository (see Baseline), or a buf image file of the
// contract, as BuildImage writes it.
func Breaking(ctx context.Context, repoDir, against string) error {
	abs, err := filepath.Abs(against)
	if err != nil {
		return err
	}
	if info, err := os.Stat(abs); err == nil && !info.IsDir() {
		// An image holds one set of files; the workspace is two modules.
		// Compare like with like: the contract's image against the image.
		tmp, err := os.MkdirTemp("", "greeter-image-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		current := filepath.Join(tmp, "current.binpb")
		if err := BuildImage(ctx, repoDir, current); err != nil {
			return err
		}
		// The image's files are named by import path, below the contract.
		return bufFindings(ctx, repoDir, ContractPath, "breaking", current, "--against", abs)
	}
	return bufFindings(ctx, repoDir, "", "breaking", "--against", abs)
}

// BuildImage writes the image of the contract in repoDir (api/, with the
// protos it imports, which breaking checks leave out) to out: a baseline
// for Breaking that needs no checkout.
func BuildImage(ctx context.Context, repoDir, out string) error {
	_, err := Buf(ctx, repoDir, "build", ContractPath, "--output", out)
	return err
}

// Baseline extracts the tracked files of git ref in repoDir into a new
// temporary directory and materialises its third-party protos, so that buf
// can compare against it as a directory. (buf's own `.git#ref=` input cannot
// see the git-ignored materialised protos.) Call cleanup when done.
func Baseline(ctx context.Context, repoDir, ref string) (dir string, cleanup func(), err error) {
	dir, err = os.MkdirTemp("", "greeter-baseline-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	archive := exec.CommandContext(ctx, "git", "archive", "--format=tar", ref)
	archive.Dir = repoDir
	tar, err := archive.Output()
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("git archive %s: %w", ref, stderrOf(err))
	}
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", dir)
	untar.Stdin = bytes.NewReader(tar)
	if out, err := untar.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("extract %s: %w: %s", ref, err, out)
	}
	// The baseline's own tools/go.mod pins the protovalidate version it was
	// written against.
	toolsDir := filepath.Join(dir, "tools")
	if _, err := os.Stat(filepath.Join(toolsDir, "go.mod")); err != nil {
		toolsDir = filepath.Join(repoDir, "tools")
	}
	if _, err := protodeps.Materialise(dir, toolsDir, protodeps.Protovalidate); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("baseline %s: %w", ref, err)
	}
	return dir, cleanup, nil
}

// RefExists reports whether ref names a commit in repoDir.
func RefExists(ctx context.Context, repoDir, ref string) bool {
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	cmd.Dir = repoDir
	return cmd.Run() == nil
}

// Generated is one tree of generated files: the buf generation template
// that writes it, the directory it writes, and which files below that
// directory are generated (the rest are written by hand: go.mod, README,
// package manifests).
type Generated struct {
	// Template is the buf generation template, relative to the repository.
	Template string
	// Dir is where the template writes, relative to the repository.
	Dir string
	// Suffixes are the endings of the generated files' names below Dir.
	Suffixes []string
}

// Trees are the generated trees of the repository, each reproduced by
// Drift: the Go module, the TypeScript and Python SDKs, the API reference,
// and connectrpc's ConformanceService for the greeter's conformance server
// (from the protos protodeps.Conformance materialises). `make generate`
// writes them all.
var Trees = []Generated{
	{Template: "buf.gen.yaml", Dir: GenDir, Suffixes: []string{".pb.go"}},
	{Template: "buf.gen.ts.yaml", Dir: "sdk/ts/gen", Suffixes: []string{"_pb.js", "_pb.d.ts"}},
	{Template: "buf.gen.python.yaml", Dir: "sdk/python/src", Suffixes: []string{"_pb2.py", "_pb2.pyi", "_pb2_grpc.py"}},
	{Template: "buf.gen.docs.yaml", Dir: "docs/api", Suffixes: []string{".md"}},
	{Template: "buf.gen.conformance.yaml", Dir: "services/greeter/internal/conformance/gen", Suffixes: []string{".pb.go"}},
}

// The Finding types of the drift check.
const (
	// DriftMissing is a file buf generate writes that is not committed.
	DriftMissing = "missing"
	// DriftDiffers is a committed file that is not what buf generate writes.
	DriftDiffers = "differs"
	// DriftStale is a committed file that buf generate no longer writes.
	DriftStale = "stale"
)

// driftMessages say what each kind of drift means, and the cure.
var driftMessages = map[string]string{
	DriftMissing: "buf generate writes this file from api/, but it is not committed: run `make generate` and commit it",
	DriftDiffers: "not what buf generate writes from api/ (a hand edit, or a proto changed without regenerating): run `make generate` and commit the result",
	DriftStale:   "buf generate no longer writes this file: `make generate` removes it; commit that",
}

// Drift generates every tree of Trees for the workspace in repoDir into a
// temporary directory and compares it byte for byte with the generated
// files committed. It fails with *Error naming every file that differs, is
// missing, or is stale (committed but no longer generated), each a Finding.
func Drift(ctx context.Context, repoDir string) error {
	if err := sdktools.Check(repoDir); err != nil {
		return fmt.Errorf("generated code drift check: %w", err)
	}
	tmp, err := os.MkdirTemp("", "greeter-gen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var findings []Finding
	found := func(kind, dir, name string) {
		findings = append(findings, Finding{Path: path.Join(dir, name), Type: kind, Message: driftMessages[kind]})
	}
	for i, tree := range Trees {
		out := filepath.Join(tmp, strconv.Itoa(i))
		if _, err := Buf(ctx, repoDir, "generate", "--template", tree.Template, "--output", out); err != nil {
			return err
		}
		fresh, err := generatedFiles(filepath.Join(out, tree.Dir), tree.Suffixes)
		if err != nil {
			return err
		}
		committed, err := generatedFiles(filepath.Join(repoDir, tree.Dir), tree.Suffixes)
		if err != nil {
			return err
		}
		for name, want := range fresh {
			got, ok := committed[name]
			switch {
			case !ok:
				found(DriftMissing, tree.Dir, name)
			case !bytes.Equal(got, want):
				found(DriftDiffers, tree.Dir, name)
			}
		}
		for name := range committed {
			if _, ok := fresh[name]; !ok {
				found(DriftStale, tree.Dir, name)
			}
		}
	}
	if len(findings) == 0 {
		return nil
	}
	slices.SortFunc(findings, func(a, b Finding) int { return strings.Compare(a.Path, b.Path) })
	var out strings.Builder
	for _, f := range findings {
		label := f.Type
		if f.Type == DriftStale {
			label = "stale (no longer generated)"
		}
		fmt.Fprintf(&out, "%s: %s\n", label, f.Path)
	}
	out.WriteString("run `make generate` and commit the result; never edit generated code by hand")
	return &Error{Check: "generated code drift check", Output: out.String(), Findings: findings}
}

// Generate regenerates every tree of Trees in repoDir in place: it deletes
// the generated files first, so none outlives its proto.
func Generate(ctx context.Context, repoDir string) error {
	if err := sdktools.Check(repoDir); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	for _, tree := range Trees {
		old, err := generatedFiles(filepath.Join(repoDir, tree.Dir), tree.Suffixes)
		if err != nil {
			return err
		}
		for name := range old {
			if err := os.Remove(filepath.Join(repoDir, tree.Dir, filepath.FromSlash(name))); err != nil {
				return err
			}
		}
		if _, err := Buf(ctx, repoDir, "generate", "--template", tree.Template); err != nil {
			return err
		}
	}
	return nil
}

// generatedFiles reads every file below dir whose name ends in one of
// suffixes, keyed by slash-separated path relative to dir.
func generatedFiles(dir string, suffixes []string) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !slices.ContainsFunc(suffixes, func(s string) bool { return strings.HasSuffix(path, s) }) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = data
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return files, nil
	}
	return files, err
}

func stderrOf(err error) error {
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && len(exitErr.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(exitErr.Stderr)))
	}
	return err
}
