package deploycheck

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// ParseDockerfile parses a Dockerfile into its build stages with BuildKit's
// own parser, the one `docker build` runs: line continuations, comments,
// the escape directive, heredocs, JSON and shell forms and instruction
// flags (COPY --from, RUN --mount) are read as the build reads them. Words
// are then expanded as a build without --build-arg expands them: the global
// ARGs' defaults in FROM, a stage's ARGs (a global's default where it only
// names one) and ENVs in the instructions after them. BuildKit's built-in
// ARGs (TARGETOS ...) are not set.
func ParseDockerfile(data []byte) ([]instructions.Stage, error) {
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, err
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	lex := shell.NewLex(res.EscapeToken)
	expand := func(env *[]string) instructions.SingleWordExpander {
		return func(word string) (string, error) {
			w, _, err := lex.ProcessWord(word, shell.EnvsFromSlice(*env))
			return w, err
		}
	}
	var globals []string
	defaults := map[string]string{}
	for _, a := range metaArgs {
		if err := a.Expand(expand(&globals)); err != nil {
			return nil, fmt.Errorf("line %d: %w", line(&a), err)
		}
		for _, kv := range a.Args {
			globals = append(globals, kv.Key+"="+kv.ValueString())
			defaults[kv.Key] = kv.ValueString()
		}
	}
	for i := range stages {
		st := &stages[i]
		base, err := expand(&globals)(st.BaseName)
		if err != nil {
			return nil, fmt.Errorf("line %d: FROM %s: %w", st.Location[0].Start.Line, st.BaseName, err)
		}
		st.BaseName = base
		var env []string
		for _, cmd := range st.Commands {
			if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
				if err := ex.Expand(expand(&env)); err != nil {
					return nil, fmt.Errorf("line %d: %w", line(cmd), err)
				}
			}
			switch c := cmd.(type) {
			case *instructions.EnvCommand:
				for _, kv := range c.Env {
					env = append(env, kv.Key+"="+kv.Value)
				}
			case *instructions.ArgCommand:
				for _, kv := range c.Args {
					v, ok := defaults[kv.Key]
					if kv.Value != nil || !ok {
						v = kv.ValueString()
					}
					env = append(env, kv.Key+"="+v)
				}
			}
		}
	}
	return stages, nil
}

// line is the line of the Dockerfile where cmd starts.
func line(cmd instructions.Command) int {
	if loc := cmd.Location(); len(loc) > 0 {
		return loc[0].Start.Line
	}
	return 0
}

// shellLine is the command line of a RUN, ENTRYPOINT or CMD as one string.
func shellLine(c instructions.ShellDependantCmdLine) string {
	return strings.Join(c.CmdLine, " ")
}

// serverModule is the directory of the module the image builds.
const serverModule = "services/greeter"

var (
	goDirective   = regexp.MustCompile(`(?m)^go (\d+\.\d+(?:\.\d+)?)\s*$`)
	golangTag     = regexp.MustCompile(`^(?:docker\.io/)?(?:library/)?golang:(\d+\.\d+(?:\.\d+)?)`)
	goBuildOutput = regexp.MustCompile(`-o[ =](\S+)`)
)

// CheckDockerfile checks root/deploy/docker/greeter.Dockerfile: a
// multi-stage build whose golang builder compiles the server statically in
// the root workspace, with this tree's gen/go, on a Go at least
// as new as the server's go.mod asks, and whose final
// stage is a non-root distroless (or scratch) image exposing exactly ports
// (the container ports of the manifests) and running /greeter as user.
func CheckDockerfile(root string, ports []int32, user int64) []error {
	data, err := os.ReadFile(filepath.Join(root, Dockerfile))
	if err != nil {
		return []error{fmt.Errorf("%s: %w", Dockerfile, err)}
	}
	stages, err := ParseDockerfile(data)
	if err != nil {
		return []error{fmt.Errorf("%s: %w", Dockerfile, err)}
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{Dockerfile}, args...)...))
	}
	if len(stages) < 2 {
		fail("want a multi-stage build (a golang builder, then a minimal runtime image), found %d stage", len(stages))
		return errs
	}

	builder, builderIndex, binPath := checkBuilder(root, stages, fail)
	if builder == nil {
		return errs
	}
	checkFinalStage(stages[len(stages)-1], builder, builderIndex, binPath, ports, user, fail)
	return errs
}

// checkBuilder finds the stage that runs `go build` of the server and
// checks it: -trimpath, -o, a golang image at least as new as the server's
// go.mod asks, CGO off, the server's go.work and this tree's gen/go copied.
// It returns the stage (nil if there is none), its index and the binary's
// path.
func checkBuilder(root string, stages []instructions.Stage, fail func(string, ...any)) (builder *instructions.Stage, builderIndex int, binPath string) {
	// builderIndex: COPY --from names a stage by name or index.
	for i := range stages[:len(stages)-1] {
		for _, cmd := range stages[i].Commands {
			run, ok := cmd.(*instructions.RunCommand)
			if !ok {
				continue
			}
			if sh := shellLine(run.ShellDependantCmdLine); strings.Contains(sh, "go build") && strings.Contains(sh, "./cmd/greeter") {
				builder, builderIndex = &stages[i], i
				if m := goBuildOutput.FindStringSubmatch(sh); m != nil {
					binPath = m[1]
				}
				if !strings.Contains(sh, "-trimpath") {
					fail("line %d: go build lacks -trimpath: add it, so the binary carries no build paths", line(run))
				}
			}
		}
	}
	if builder == nil {
		fail("no stage before the last runs `go build ... ./cmd/greeter` in services/greeter")
		return nil, 0, ""
	}
	if binPath == "" {
		fail("the go build of the server has no -o PATH: name the output, the final stage copies it")
	}
	m := golangTag.FindStringSubmatch(builder.BaseName)
	if m == nil {
		fail("builder image %q is not golang:<version>: build with the official Go image", builder.BaseName)
	} else if gw, err := os.ReadFile(filepath.Join(root, serverModule, "go.mod")); err == nil {
		if w := goDirective.FindSubmatch(gw); w != nil {
			need := "v" + string(w[1])
			have := "v" + m[1]
			// golang:1.26 is the newest 1.26.x: compare what the tag names.
			if semver.Compare(have, semver.MajorMinor(need)) < 0 || (strings.Count(m[1], ".") == 2 && semver.Compare(have, need) < 0) {
				fail("builder image %q is older than %s/go.mod's go %s: use golang:%s or newer", builder.BaseName, serverModule, w[1], strings.TrimPrefix(semver.MajorMinor(need), "v"))
			}
		}
	}
	// What the builder sets (ENV, ARG defaults, RUN's inline assignments)
	// and copies from the context.
	var env strings.Builder
	var copied []string
	for _, cmd := range builder.Commands {
		switch c := cmd.(type) {
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				env.WriteString(" " + kv.Key + "=" + kv.Value)
			}
		case *instructions.ArgCommand:
			for _, kv := range c.Args {
				env.WriteString(" " + kv.String())
			}
		case *instructions.RunCommand:
			env.WriteString(" " + shellLine(c.ShellDependantCmdLine))
		case *instructions.CopyCommand:
			if c.From == "" {
				copied = append(copied, c.SourcePaths...)
			}
		case *instructions.AddCommand:
			copied = append(copied, c.SourcePaths...)
		}
	}
	if !regexp.MustCompile(`CGO_ENABLED=0\b`).MatchString(env.String()) {
		fail("the builder does not set CGO_ENABLED=0: set it (ENV CGO_ENABLED=0), the final image has no C library")
	}
	if regexp.MustCompile(`GOWORK=off\b`).MatchString(env.String()) {
		fail("the builder sets GOWORK=off: the server would build against a published gen/go rather than this tree's; build in the root workspace")
	}
	needed, err := workspaceFiles(root)
	if err != nil {
		fail("%v", err)
	}
	for _, f := range needed {
		if !slices.ContainsFunc(copied, func(src string) bool {
			src = path.Clean(src)
			return src == f || strings.HasPrefix(f, src+"/")
		}) {
			fail("the builder copies no %s: the server builds in the root workspace (go.work needs the go.mod of every module it uses) with this tree's gen/go", f)
		}
	}

	return builder, builderIndex, binPath
}

// checkFinalStage checks the runtime stage: a non-root distroless (or
// scratch) image, the builder's binary copied to /greeter, no RUN, the
// numeric user, exactly ports exposed, and the exec-form ENTRYPOINT.
func checkFinalStage(final instructions.Stage, builder *instructions.Stage, builderIndex int, binPath string, ports []int32, user int64, fail func(string, ...any)) {
	switch {
	case final.BaseName == "scratch":
	case strings.HasPrefix(final.BaseName, "gcr.io/distroless/static") && strings.Contains(final.BaseName, ":nonroot"):
	default:
		fail("final image %q: use gcr.io/distroless/static-debian12:nonroot (or scratch), no shell, no package manager", final.BaseName)
	}
	var users, exposed []string
	var entry []*instructions.EntrypointCommand
	copiedBinary := false
	for _, cmd := range final.Commands {
		switch c := cmd.(type) {
		case *instructions.UserCommand:
			users = append(users, c.User)
		case *instructions.ExposeCommand:
			exposed = append(exposed, c.Ports...)
		case *instructions.EntrypointCommand:
			entry = append(entry, c)
		case *instructions.CopyCommand:
			from := c.From == strconv.Itoa(builderIndex) || (builder.Name != "" && c.From == builder.Name)
			if from && c.DestPath == "/greeter" && (binPath == "" || slices.Equal(c.SourcePaths, []string{binPath})) {
				copiedBinary = true
			}
		case *instructions.RunCommand:
			fail("line %d: RUN in the final stage: the runtime image has no shell; do the work in the builder", line(c))
		}
	}
	if !copiedBinary {
		fail("the final stage does not COPY --from=%s %s /greeter", builder.Name, binPath)
	}
	wantUser := strconv.FormatInt(user, 10)
	if len(users) == 0 {
		fail("the final stage sets no USER: add USER %s:%s (numeric, so the kubelet can verify runAsNonRoot)", wantUser, wantUser)
	} else if u := users[len(users)-1]; u != wantUser && u != wantUser+":"+wantUser {
		fail("the final stage runs as USER %q: use USER %s:%s, numeric and the manifests' runAsUser", u, wantUser, wantUser)
	}
	var got, want []string
	for _, e := range exposed {
		got = append(got, strings.TrimSuffix(e, "/tcp"))
	}
	for _, p := range ports {
		want = append(want, strconv.Itoa(int(p)))
	}
	slices.Sort(got)
	slices.Sort(want)
	// No ports: the manifests did not render, which Check reports already.
	if ports != nil && !slices.Equal(slices.Compact(got), slices.Compact(want)) {
		fail("EXPOSE %s differs from the manifests' container ports %s: expose exactly the ports the Deployment declares", strings.Join(got, " "), strings.Join(want, " "))
	}
	switch {
	case len(entry) != 1:
		fail("the final stage needs one ENTRYPOINT [\"/greeter\"], found %d", len(entry))
	case entry[0].PrependShell || !slices.Equal(entry[0].CmdLine, []string{"/greeter"}):
		fail("%s: use the exec form [\"/greeter\"] so the server is PID 1 and gets SIGTERM (flags come from the manifest's args)", entry[0].String())
	}
}

// workspaceFiles returns what a build in the root workspace needs from the
// context: go.work, the go.mod of every module it uses, and gen/go whole.
func workspaceFiles(root string) ([]string, error) {
	const work = "go.work"
	data, err := os.ReadFile(filepath.Join(root, work))
	if err != nil {
		return nil, err
	}
	wf, err := modfile.ParseWork(work, data, nil)
	if err != nil {
		return nil, err
	}
	files := []string{work, "gen/go"}
	for _, u := range wf.Use {
		files = append(files, path.Join(path.Clean(u.Path), "go.mod"))
	}
	return files, nil
}
