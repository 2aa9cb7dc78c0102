package deploycheck_test

import (
	"context"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/acme/greeter/test/deploycheck"
	"github.com/acme/greeter/test/harness/buildlist"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// TestDockerBuilderStage runs the Dockerfile's builder stage without
// Docker, which cannot run here: an empty directory stands for the build
// container's root, the stage's COPY instructions copy into it from the
// repository (less what the .dockerignore excludes), its ENV is set and its
// go build runs. So the COPY list is complete for the server's build in the
// root workspace (go.work, every used module's go.mod, this tree's gen/go), and
// the binary it makes is checked: static (no ELF interpreter, no shared
// libraries), -trimpath, CGO_ENABLED=0, every dependency at the version the
// server's own go.mod selects, gen/go from this tree, and runnable.
func TestDockerBuilderStage(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the server from scratch with the image's flags")
	}
	root := repoRoot()
	data, err := os.ReadFile(filepath.Join(root, deploycheck.Dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	stages, err := deploycheck.ParseDockerfile(data)
	if err != nil {
		t.Fatal(err)
	}
	ignore := dockerignore(t, filepath.Join(root, deploycheck.Dockerfile+".dockerignore"))
	fakeRoot := t.TempDir()
	workdir := "/"
	inContainer := func(p string) string {
		if !filepath.IsAbs(p) {
			p = filepath.Join(workdir, p)
		}
		return filepath.Join(fakeRoot, p)
	}
	// The host's Go settings must not leak in; the stage's ENV replaces them.
	env := []string{"CGO_ENABLED=", "GOWORK=", "GOFLAGS=", "GOTOOLCHAIN="}
	binary := ""
	for _, cmd := range stages[0].Commands {
		at := fmt.Sprintf("line %d: %s", cmd.Location()[0].Start.Line, cmd)
		switch c := cmd.(type) {
		case *instructions.WorkdirCommand:
			workdir = c.Path
			if err := os.MkdirAll(inContainer("."), 0o755); err != nil {
				t.Fatal(err)
			}
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				v := kv.Value
				if strings.HasPrefix(v, "/") {
					v = inContainer(v)
				}
				env = append(env, kv.Key+"="+v)
			}
		case *instructions.CopyCommand:
			if c.From != "" || c.Chown != "" || c.Chmod != "" || c.Link || c.Parents || len(c.ExcludePatterns) > 0 || len(c.SourceContents) > 0 {
				t.Fatalf("%s: this COPY's flags or heredoc are not simulated", at)
			}
			dst := inContainer(c.DestPath)
			for _, src := range c.SourcePaths {
				copyIn(t, root, src, dst, strings.HasSuffix(c.DestPath, "/"), ignore)
			}
		case *instructions.RunCommand:
			// The cache mounts (--mount=type=cache) only speed up a build.
			for _, m := range instructions.GetMounts(c) {
				if m.Type != instructions.MountTypeCache {
					t.Fatalf("%s: a --mount=type=%s is not simulated", at, m.Type)
				}
			}
			if !c.PrependShell || len(c.Files) > 0 {
				t.Fatalf("%s: only the shell form without heredocs is simulated", at)
			}
			cmd := strings.Join(c.CmdLine, " ")
			// Absolute paths of the container, e.g. -o /out/greeter.
			cmd = regexp.MustCompile(`(^|\s)(/[A-Za-z])`).ReplaceAllString(cmd, "${1}"+fakeRoot+"${2}")
			if m := regexp.MustCompile(`-o\s+(\S+)`).FindStringSubmatch(cmd); m != nil {
				binary = m[1]
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			run := exec.CommandContext(ctx, "sh", "-c", cmd)
			run.Dir = inContainer(".")
			run.Env = append(os.Environ(), env...)
			out, err := run.CombinedOutput()
			cancel()
			if err != nil {
				t.Fatalf("%s: %v\n%s", at, err, out)
			}
		default:
			t.Fatalf("%s: the builder stage's %s instructions are not simulated", at, cmd.Name())
		}
	}
	if binary == "" {
		t.Fatal("the builder stage ran no go build -o")
	}

	f, err := elf.Open(binary)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has an ELF interpreter: it is dynamically linked and will not start on distroless/static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %q", libs)
	}
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["-trimpath"] != "true" || settings["CGO_ENABLED"] != "0" {
		t.Errorf("build settings -trimpath=%q CGO_ENABLED=%q, want true and 0", settings["-trimpath"], settings["CGO_ENABLED"])
	}
	local := false
	for _, d := range bi.Deps {
		if d.Path == buildlist.GenModule {
			// A workspace module is recorded as (devel), unreplaced.
			local = d.Replace != nil || d.Version == "(devel)"
			t.Logf("gen/go in the image: %s %s => %v", d.Path, d.Version, d.Replace)
		}
	}
	if !local {
		t.Error("the binary was not built against this tree's gen/go: copy go.work with the modules it uses and build in the workspace")
	}
	own, err := buildlist.Own(context.Background(), root, "services/greeter")
	if err != nil {
		t.Fatal(err)
	}
	diffs, err := buildlist.Mismatches(binary, own)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("the image's binary links other versions than services/greeter/go.mod selects: %s", d)
	}
	out, err := exec.Command(binary, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", binary, err, out)
	}
	t.Logf("builder stage made a static binary: %s", strings.TrimSpace(string(out)))
}

// TestDockerfileEquivalentForms rewrites the Dockerfile in ways that build
// the same image: the checks read it as BuildKit does, so each stays clean.
func TestDockerfileEquivalentForms(t *testing.T) {
	for _, tc := range []struct{ name, old, new string }{
		{"stage by index", "COPY --from=build ", "COPY --from=0 "},
		{"legacy ENV form", "ENV CGO_ENABLED=0 GOTOOLCHAIN=local", "ENV CGO_ENABLED 0\nENV GOTOOLCHAIN local"},
		{"comment inside a continuation", "ENV CGO_ENABLED=0 GOTOOLCHAIN=local", "ENV CGO_ENABLED=0 \\\n    # never fetch another toolchain\n    GOTOOLCHAIN=local"},
		{"user from an ARG", "USER 65532:65532", "ARG UID=65532\nUSER ${UID}:${UID}"},
		{"cgo setting from an ARG", "ENV CGO_ENABLED=0 ", "ARG CGO=0\nENV CGO_ENABLED=${CGO} "},
		{"JSON form with spaces", `ENTRYPOINT ["/greeter"]`, `ENTRYPOINT [ "/greeter" ]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := copyTree(t)
			edit(t, root, dockerfile, tc.old, tc.new)
			if errs := deploycheck.CheckDockerfile(root, []int32{50051, 8080, 9090}, deploycheck.RunAsUser); len(errs) > 0 {
				t.Fatalf("%s:\n%v", tc.name, errors.Join(errs...))
			}
		})
	}
}

// dockerignore reads a .dockerignore as BuildKit does (its own
// ignorefile reader and pattern matcher): it reports whether a path of the
// context, slash-separated, is left out of it.
func dockerignore(t *testing.T, path string) func(rel string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return func(rel string) bool {
		ignored, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, rel, err)
		}
		return ignored
	}
}

// copyIn copies src (relative to the context root, a file or a directory)
// to dst as COPY does: a directory's contents into dst, a file into dst/
// when dst ends in a slash.
func copyIn(t *testing.T, root, src, dst string, dstIsDir bool, ignored func(string) bool) {
	t.Helper()
	src = filepath.Clean(src)
	err := filepath.WalkDir(filepath.Join(root, src), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		// Every file is matched on its own: a "!" pattern can bring one
		// back from an ignored directory.
		if d.IsDir() || ignored(filepath.ToSlash(rel)) {
			return nil
		}
		inSrc, _ := filepath.Rel(filepath.Join(root, src), path)
		target := filepath.Join(dst, inSrc)
		if inSrc == "." {
			target = dst
			if dstIsDir {
				target = filepath.Join(dst, filepath.Base(path))
			}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatalf("COPY %s: %v", src, err)
	}
}
