package protocheck_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/acme/greeter/tools/internal/protocheck"
	"github.com/acme/greeter/tools/internal/repo"
	"github.com/acme/greeter/tools/internal/repotest"
)

const v1Proto = "api/acme/greeter/v1/greeter.proto"

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
			dir := repotest.Copy(t)
			repotest.Replace(t, dir, v1Proto, tc.old, tc.new)
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
	dir := repotest.Copy(t)
	repotest.Replace(t, dir, v1Proto, "message SayHelloResponse {\n  //", "message SayHelloResponse{\n//")
	wantCheckError(t, protocheck.FormatCheck(ctx, dir), v1Proto)
}

func TestBreaking(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := repotest.Copy(t)
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
			dir := repotest.Copy(t)
			repotest.Replace(t, dir, v1Proto, tc.old, tc.new)
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
		dir := repotest.Copy(t)
		repotest.Replace(t, dir, "api/helloworld/helloworld.proto", "string message = 1;", "string greeting = 1;")
		wantCheckError(t, protocheck.Breaking(ctx, dir, base), "helloworld.proto", "greeting")
	})
}

// TestBreakingAgainstImage covers the other kind of baseline: a buf image
// (what a contract registry or a release artefact holds).
func TestBreakingAgainstImage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := repotest.Copy(t)
	image := filepath.Join(t.TempDir(), "base.binpb")
	if err := protocheck.BuildImage(ctx, base, image); err != nil {
		t.Fatal(err)
	}
	if err := protocheck.Breaking(ctx, base, image); err != nil {
		t.Fatalf("a tree must not break its own image: %v", err)
	}
	dir := repotest.Copy(t)
	repotest.Replace(t, dir, v1Proto, "int32 count = 2 ", "int64 count = 2 ")
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
		return func(t *testing.T, dir string) { repotest.WriteFile(t, dir, rel, content) }
	}
	tests := map[string]struct {
		plant func(t *testing.T, dir string)
		want  []string
	}{
		// One copy for the four trees: each drift check regenerates them all.
		"hand-edited generated files": {
			plant: func(t *testing.T, dir string) {
				repotest.Replace(t, dir, "gen/go/acme/greeter/v1/greeter.pb.go", "package greeterv1", "package greeterv1 // edited")
				repotest.Replace(t, dir, "sdk/ts/gen/acme/greeter/v1/greeter_pb.d.ts", "export declare type SayHelloRequest =", "export declare type SayHelloRequestEdited =")
				repotest.Replace(t, dir, "sdk/python/src/acme/greeter/v1/greeter_pb2_grpc.py", "import grpc", "import grpc  # edited")
				repotest.Replace(t, dir, "docs/api/acme.greeter.v1.md", "at most 100 characters", "at most 200 characters")
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
				repotest.Replace(t, dir, v1Proto, "message SayHelloResponse {\n", "message SayHelloResponse {\n  // locale is new.\n  string locale = 2;\n")
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
			dir := repotest.Copy(t)
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
	dir := repotest.Copy(t)
	repotest.Replace(t, dir, "docs/api/acme.greeter.v1.md", "at most 100 characters", "at most 200 characters")
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

// TestFindings checks that each check's findings name the file and the
// line a pull request's annotations point at.
func TestFindings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := repotest.Copy(t)
	dir := repotest.Copy(t)
	repotest.Replace(t, dir, v1Proto, "message SayHelloResponse {\n  // message is the greeting, e.g. \"Hello, Ada!\".\n  string message = 1;",
		"message SayHelloResponse{\n  // message is the greeting, e.g. \"Hello, Ada!\".\n  string   message = 1;")
	repotest.Replace(t, dir, v1Proto, "  // count is how many greetings to send: 1 to 10,000.\n  int32 count = 2 ", "  int32 count = 4 ")
	repotest.WriteFile(t, dir, "docs/api/old.md", "# old\n")
	lines := strings.Split(repotest.ReadFile(t, dir, v1Proto), "\n")
	lineOf := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return i + 1
			}
		}
		t.Fatalf("%s has no line %q", v1Proto, prefix)
		return 0
	}
	findings := func(err error) []protocheck.Finding {
		var checkErr *protocheck.Error
		if !errors.As(err, &checkErr) {
			t.Fatalf("want a failed check, got %v", err)
		}
		return checkErr.Findings
	}
	tests := map[string]struct {
		err  error
		want []protocheck.Finding
	}{
		"format": {
			err: protocheck.FormatCheck(ctx, dir),
			want: []protocheck.Finding{
				{Path: v1Proto, StartLine: lineOf("message SayHelloResponse{"), EndLine: lineOf("message SayHelloResponse{"), Type: protocheck.FormatType,
					Message: "buf format would write (run `make format`):\nmessage SayHelloResponse {"},
				{Path: v1Proto, StartLine: lineOf("  string   message"), EndLine: lineOf("  string   message"), Type: protocheck.FormatType,
					Message: "buf format would write (run `make format`):\n  string message = 1;"},
			},
		},
		"lint": {
			err: protocheck.Lint(ctx, dir),
			want: []protocheck.Finding{{Path: v1Proto, StartLine: lineOf("  int32 count"), StartColumn: 3, EndLine: lineOf("  int32 count") + 3, EndColumn: 6,
				Type: "COMMENT_FIELD", Message: `Field "count" should have a non-empty comment for documentation.`}},
		},
		"breaking": {
			err: protocheck.Breaking(ctx, dir, base),
			// A renumbered field is, to a client, the old one deleted.
			want: []protocheck.Finding{{Path: v1Proto, StartLine: lineOf("message SayHelloStreamRequest {"), StartColumn: 1, EndLine: lineOf("message SayHelloStreamRequest {") + 17, EndColumn: 2,
				Type: "FIELD_NO_DELETE", Message: `Previously present field "2" with name "count" on message "SayHelloStreamRequest" was deleted.`}},
		},
		"drift": {
			err: protocheck.Drift(ctx, dir),
			want: []protocheck.Finding{{Path: "docs/api/old.md", Type: protocheck.DriftStale,
				Message: "buf generate no longer writes this file: `make generate` removes it; commit that"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := findings(tc.err)
			for _, want := range tc.want {
				if !slices.Contains(got, want) {
					t.Errorf("findings lack %#v; got:\n%#v", want, got)
				}
			}
		})
	}
}
