package deploycheck

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/semver"
)

// Instruction is one Dockerfile instruction, continuation lines joined.
type Instruction struct {
	Line    int
	Keyword string // upper case
	Args    string
}

// Stage is one FROM ... of a multi-stage build.
type Stage struct {
	Image        string // with global ARGs substituted
	Name         string
	Instructions []Instruction
}

// ParseDockerfile splits a Dockerfile into stages. Global ARGs (before the
// first FROM) with defaults are substituted into FROM lines.
func ParseDockerfile(data string) ([]Stage, error) {
	var ins []Instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(data, "\n") {
		t := strings.TrimSpace(line)
		if cur.Len() == 0 && (t == "" || strings.HasPrefix(t, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(t, "#") {
			continue // comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(t, `\`) {
			cur.WriteString(strings.TrimSuffix(t, `\`) + " ")
			continue
		}
		cur.WriteString(t)
		kw, args, _ := strings.Cut(cur.String(), " ")
		ins = append(ins, Instruction{Line: start, Keyword: strings.ToUpper(kw), Args: strings.TrimSpace(args)})
		cur.Reset()
	}
	globals := map[string]string{}
	var stages []Stage
	for _, in := range ins {
		switch {
		case in.Keyword == "FROM":
			f := strings.Fields(expandArgs(in.Args, globals))
			if len(f) > 0 && strings.HasPrefix(f[0], "--platform") {
				f = f[1:]
			}
			if len(f) == 0 {
				return nil, fmt.Errorf("line %d: FROM without an image", in.Line)
			}
			s := Stage{Image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.Name = f[2]
			}
			stages = append(stages, s)
		case len(stages) == 0 && in.Keyword == "ARG":
			name, def, _ := strings.Cut(in.Args, "=")
			globals[strings.TrimSpace(name)] = strings.Trim(strings.TrimSpace(def), `"`)
		case len(stages) == 0:
			return nil, fmt.Errorf("line %d: %s before the first FROM", in.Line, in.Keyword)
		default:
			stages[len(stages)-1].Instructions = append(stages[len(stages)-1].Instructions, in)
		}
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	return stages, nil
}

var argRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

func expandArgs(s string, vars map[string]string) string {
	return argRef.ReplaceAllStringFunc(s, func(m string) string {
		name := argRef.FindStringSubmatch(m)[1]
		if v, ok := vars[name]; ok {
			return v
		}
		return m
	})
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
// its own module, with its go.work and this tree's gen/go, on a Go at least
// as new as the server's go.mod asks, and whose final
// stage is a non-root distroless (or scratch) image exposing exactly ports
// (the container ports of the manifests) and running /greeter as user.
func CheckDockerfile(root string, ports []int32, user int64) []error {
	data, err := os.ReadFile(filepath.Join(root, Dockerfile))
	if err != nil {
		return []error{fmt.Errorf("%s: %w", Dockerfile, err)}
	}
	stages, err := ParseDockerfile(string(data))
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

	// The builder: the stage that runs `go build` of the server.
	var builder *Stage
	var binPath string
	for i := range stages[:len(stages)-1] {
		for _, in := range stages[i].Instructions {
			if in.Keyword == "RUN" && strings.Contains(in.Args, "go build") && strings.Contains(in.Args, "./cmd/greeter") {
				builder = &stages[i]
				if m := goBuildOutput.FindStringSubmatch(in.Args); m != nil {
					binPath = m[1]
				}
				if !strings.Contains(in.Args, "-trimpath") {
					fail("line %d: go build lacks -trimpath: add it, so the binary carries no build paths", in.Line)
				}
			}
		}
	}
	if builder == nil {
		fail("no stage before the last runs `go build ... ./cmd/greeter` in services/greeter")
		return errs
	}
	if binPath == "" {
		fail("the go build of the server has no -o PATH: name the output, the final stage copies it")
	}
	m := golangTag.FindStringSubmatch(builder.Image)
	if m == nil {
		fail("builder image %q is not golang:<version>: build with the official Go image", builder.Image)
	} else if gw, err := os.ReadFile(filepath.Join(root, serverModule, "go.mod")); err == nil {
		if w := goDirective.FindSubmatch(gw); w != nil {
			need := "v" + string(w[1])
			have := "v" + m[1]
			// golang:1.26 is the newest 1.26.x: compare what the tag names.
			if semver.Compare(have, semver.MajorMinor(need)) < 0 || (strings.Count(m[1], ".") == 2 && semver.Compare(have, need) < 0) {
				fail("builder image %q is older than %s/go.mod's go %s: use golang:%s or newer", builder.Image, serverModule, w[1], strings.TrimPrefix(semver.MajorMinor(need), "v"))
			}
		}
	}
	var env, copies strings.Builder
	for _, in := range builder.Instructions {
		switch in.Keyword {
		case "ENV", "RUN", "ARG":
			env.WriteString(" " + in.Args)
		case "COPY", "ADD":
			copies.WriteString(" " + in.Args + "\n")
		}
	}
	if !regexp.MustCompile(`CGO_ENABLED[= ]0\b`).MatchString(env.String()) {
		fail("the builder does not set CGO_ENABLED=0: set it (ENV CGO_ENABLED=0), the final image has no C library")
	}
	if regexp.MustCompile(`GOWORK[= ]off\b`).MatchString(env.String()) {
		fail("the builder sets GOWORK=off: the server would build against a published gen/go rather than this tree's; keep its go.work")
	}
	for _, f := range []string{serverModule + "/go.work", "gen/go"} {
		if !strings.Contains(copies.String(), f) {
			fail("the builder copies no %s: the server module builds with its go.work and this tree's gen/go", f)
		}
	}

	final := stages[len(stages)-1]
	switch {
	case final.Image == "scratch":
	case strings.HasPrefix(final.Image, "gcr.io/distroless/static") && strings.Contains(final.Image, ":nonroot"):
	default:
		fail("final image %q: use gcr.io/distroless/static-debian12:nonroot (or scratch), no shell, no package manager", final.Image)
	}
	var users, exposed, entry []string
	copied := false
	for _, in := range final.Instructions {
		switch in.Keyword {
		case "USER":
			users = append(users, in.Args)
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.Args)...)
		case "ENTRYPOINT":
			entry = append(entry, in.Args)
		case "COPY":
			f := strings.Fields(in.Args)
			if len(f) >= 3 && strings.HasPrefix(f[0], "--from=") && f[len(f)-1] == "/greeter" &&
				(strings.TrimPrefix(f[0], "--from=") == builder.Name || builder.Name == "") && (binPath == "" || f[1] == binPath) {
				copied = true
			}
		case "RUN":
			fail("line %d: RUN in the final stage: the runtime image has no shell; do the work in the builder", in.Line)
		}
	}
	if !copied {
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
	if len(entry) != 1 {
		fail("the final stage needs one ENTRYPOINT [\"/greeter\"], found %d", len(entry))
	} else {
		var argv []string
		if err := json.Unmarshal([]byte(entry[0]), &argv); err != nil || !slices.Equal(argv, []string{"/greeter"}) {
			fail("ENTRYPOINT %s: use the exec form [\"/greeter\"] so the server is PID 1 and gets SIGTERM (flags come from the manifest's args)", entry[0])
		}
	}
	return errs
}
