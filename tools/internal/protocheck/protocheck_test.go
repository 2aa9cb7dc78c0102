package protocheck_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme/greeter/tools/internal/protocheck"
	"github.com/acme/greeter/tools/internal/repo"
)

const v1Proto = "api/acme/greeter/v1/greeter.proto"

// copyRepo copies the repository's tracked files, as they are in the working
// tree, plus the materialised third-party protos into a temporary directory,
// so a test can plant a fault without touching the checkout.
func copyRepo(t *testing.T) string {
	t.Helper()
	root := repo.TestRoot(t)
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	files := strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
	third, err := filepath.Glob(filepath.Join(root, "third_party", "*", "buf", "validate", "*.proto"))
	if err != nil || len(third) == 0 {
		t.Fatalf("materialised protovalidate protos are missing (run `go tool protodeps`): %v", err)
	}
	for _, f := range third {
		rel, _ := filepath.Rel(root, f)
		files = append(files, rel)
	}
	dst := t.TempDir()
	for _, rel := range files {
		data, err := os.ReadFile(filepath.Join(root, rel))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// protoc-gen-es, installed by `npm ci` (git-ignored), generates the
	// TypeScript SDK in the copy too.
	if err := os.Symlink(filepath.Join(root, "sdk", "ts", "node_modules"), filepath.Join(dst, "sdk", "ts", "node_modules")); err != nil {
		t.Fatal(err)
	}
	return dst
}

// plant replaces old with new in the file rel below dir; old must occur.
func plant(t *testing.T, dir, rel, old, new string) {
	t.Helper()
	path := filepath.Join(dir, rel)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q: the test is out of date with the contract", rel, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantCheckError asserts that err is a failed check whose output mentions
// every one of wants.
func wantCheckError(t *testing.T, err error, wants ...string) {
	t.Helper()
	var checkErr *protocheck.Error
	if !errors.As(err, &checkErr) {
		t.Fatalf("want a failed check, got %v", err)
	}
	for _, want := range wants {
		if !strings.Contains(checkErr.Output, want) {
			t.Errorf("check output does not mention %q:\n%s", want, checkErr.Output)
		}
	}
}

func TestLint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if err := protocheck.Lint(ctx, repo.TestRoot(t)); err != nil {
		t.Fatalf("the repository must lint clean: %v", err)
	}
	tests := map[string]struct {
		old, new string
		want     []string
	}{
		"lower_snake service name": {
			old:  "service GreeterService {",
			new:  "service greeter_service {",
			want: []string{v1Proto, "PascalCase"},
		},
		// The helloworld exceptions in buf.yaml apply to that path only.
		"service suffix outside helloworld": {
			old:  "service GreeterService {",
			new:  "service Greeter {",
			want: []string{v1Proto, `"Service"`},
		},
		"undocumented field": {
			old:  "  // count is how many greetings to send: 1 to 10,000.\n",
			new:  "",
			want: []string{v1Proto, "comment"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := copyRepo(t)
			plant(t, dir, v1Proto, tc.old, tc.new)
			wantCheckError(t, protocheck.Lint(ctx, dir), tc.want...)
		})
	}
}

func TestFormatCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if err := protocheck.FormatCheck(ctx, repo.TestRoot(t)); err != nil {
		t.Fatalf("the repository must be buf-formatted: %v", err)
	}
	dir := copyRepo(t)
	plant(t, dir, v1Proto, "message SayHelloResponse {\n  //", "message SayHelloResponse{\n//")
	wantCheckError(t, protocheck.FormatCheck(ctx, dir), v1Proto)
}

func TestBreaking(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := copyRepo(t)
	tests := map[string]struct {
		old, new string
		// want is empty for a compatible change.
		want []string
	}{
		"field renamed": {
			old:  "  string name = 1 [\n",
			new:  "  string full_name = 1 [\n",
			want: []string{`"name"`, "full_name"},
		},
		"field renumbered": {
			old:  "int32 count = 2 ",
			new:  "int32 count = 4 ",
			want: []string{"count"},
		},
		"field removed": {
			old:  "  google.protobuf.Duration interval = 3 [",
			new:  "  reserved 3;\n  google.protobuf.Duration removed_interval = 99 [",
			want: []string{"interval"},
		},
		"rpc removed": {
			old:  "  rpc SayHelloAgain(SayHelloAgainRequest) returns (SayHelloAgainResponse) {\n    option idempotency_level = NO_SIDE_EFFECTS;\n  }\n",
			new:  "",
			want: []string{"SayHelloAgain"},
		},
		"new field is compatible": {
			old: "message SayHelloResponse {\n",
			new: "message SayHelloResponse {\n  // locale is new.\n  string locale = 2;\n",
		},
		"new rpc is compatible": {
			old: "service GreeterService {\n",
			new: "service GreeterService {\n  // SayGoodbye is new.\n  rpc SayGoodbye(SayHelloRequest) returns (SayHelloResponse);\n",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := copyRepo(t)
			plant(t, dir, v1Proto, tc.old, tc.new)
			err := protocheck.Breaking(ctx, dir, base)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("a compatible change must pass: %v", err)
				}
				return
			}
			wantCheckError(t, err, tc.want...)
		})
	}
	t.Run("frozen helloworld contract", func(t *testing.T) {
		t.Parallel()
		dir := copyRepo(t)
		plant(t, dir, "api/helloworld/helloworld.proto", "string message = 1;", "string greeting = 1;")
		wantCheckError(t, protocheck.Breaking(ctx, dir, base), "helloworld.proto", "greeting")
	})
}

// TestBreakingAgainstImage covers the other kind of baseline: a buf image
// (what a contract registry or a release artefact holds).
func TestBreakingAgainstImage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := copyRepo(t)
	image := filepath.Join(t.TempDir(), "base.binpb")
	if err := protocheck.BuildImage(ctx, base, image); err != nil {
		t.Fatal(err)
	}
	if err := protocheck.Breaking(ctx, base, image); err != nil {
		t.Fatalf("a tree must not break its own image: %v", err)
	}
	dir := copyRepo(t)
	plant(t, dir, v1Proto, "int32 count = 2 ", "int64 count = 2 ")
	wantCheckError(t, protocheck.Breaking(ctx, dir, image), "count")
}

func TestBaselineFromGit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := repo.TestRoot(t)
	dir, cleanup, err := protocheck.Baseline(ctx, root, "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	for _, want := range []string{v1Proto, "buf.yaml", "third_party/protovalidate/buf/validate/validate.proto"} {
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			t.Errorf("baseline lacks %s: %v", want, err)
		}
	}
	if _, _, err := protocheck.Baseline(ctx, root, "no-such-ref-anywhere"); err == nil {
		t.Error("an unknown ref must fail")
	}
}

func TestDrift(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if err := protocheck.Drift(ctx, repo.TestRoot(t)); err != nil {
		t.Fatalf("the generated trees must match buf generate: %v", err)
	}
	writeFile := func(rel, content string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, rel), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := map[string]struct {
		plant func(t *testing.T, dir string)
		want  []string
	}{
		// One copy for the four trees: each drift check regenerates them all.
		"hand-edited generated files": {
			plant: func(t *testing.T, dir string) {
				plant(t, dir, "gen/go/acme/greeter/v1/greeter.pb.go", "package greeterv1", "package greeterv1 // edited")
				plant(t, dir, "sdk/ts/gen/acme/greeter/v1/greeter_pb.d.ts", "export declare type SayHelloRequest =", "export declare type SayHelloRequestEdited =")
				plant(t, dir, "sdk/python/src/acme/greeter/v1/greeter_pb2_grpc.py", "import grpc", "import grpc  # edited")
				plant(t, dir, "docs/api/acme.greeter.v1.md", "at most 100 characters", "at most 200 characters")
			},
			want: []string{
				"differs: gen/go/acme/greeter/v1/greeter.pb.go",
				"differs: sdk/ts/gen/acme/greeter/v1/greeter_pb.d.ts",
				"differs: sdk/python/src/acme/greeter/v1/greeter_pb2_grpc.py",
				"differs: docs/api/acme.greeter.v1.md",
			},
		},
		"proto changed without regenerating": {
			plant: func(t *testing.T, dir string) {
				plant(t, dir, v1Proto, "message SayHelloResponse {\n", "message SayHelloResponse {\n  // locale is new.\n  string locale = 2;\n")
			},
			want: []string{
				"differs: gen/go/acme/greeter/v1/greeter.pb.go",
				"differs: sdk/ts/gen/acme/greeter/v1/greeter_pb.js",
				"differs: sdk/python/src/acme/greeter/v1/greeter_pb2.py",
				"differs: docs/api/acme.greeter.v1.md",
			},
		},
		"stale generated files": {
			plant: func(t *testing.T, dir string) {
				writeFile("gen/go/acme/greeter/v1/old.pb.go", "package greeterv1\n")(t, dir)
				writeFile("sdk/ts/gen/acme/greeter/v1/old_pb.js", "export {};\n")(t, dir)
				writeFile("sdk/python/src/acme/greeter/v1/old_pb2.py", "\n")(t, dir)
				writeFile("docs/api/old.md", "# old\n")(t, dir)
			},
			want: []string{
				"stale (no longer generated): gen/go/acme/greeter/v1/old.pb.go",
				"stale (no longer generated): sdk/ts/gen/acme/greeter/v1/old_pb.js",
				"stale (no longer generated): sdk/python/src/acme/greeter/v1/old_pb2.py",
				"stale (no longer generated): docs/api/old.md",
			},
		},
		"generated file deleted": {
			plant: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "sdk/python/src/buf/validate/validate_pb2.py")); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"missing: sdk/python/src/buf/validate/validate_pb2.py"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := copyRepo(t)
			tc.plant(t, dir)
			wantCheckError(t, protocheck.Drift(ctx, dir), tc.want...)
		})
	}
}

// TestGenerate regenerates a copy in place after planting a hand edit and
// a stale file: both are gone, and the copy passes the drift check.
func TestGenerate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := copyRepo(t)
	plant(t, dir, "docs/api/acme.greeter.v1.md", "at most 100 characters", "at most 200 characters")
	stale := filepath.Join(dir, "sdk/ts/gen/acme/greeter/v1/old_pb.js")
	if err := os.WriteFile(stale, []byte("export {};\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := protocheck.Generate(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale %s survived generate: %v", stale, err)
	}
	if err := protocheck.Drift(ctx, dir); err != nil {
		t.Errorf("after generate: %v", err)
	}
}
