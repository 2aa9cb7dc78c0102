package sdk_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme/greeter/test/harness/repo"
)

// consumerBufGen is a consuming team's own generation template: Python
// messages and gRPC stubs from the released protos, with Debian's protoc
// and grpc_python_plugin (any language's plugin would do).
const consumerBufGen = `version: v2
plugins:
  - protoc_builtin: python
    protoc_path: /usr/bin/protoc
    out: gen
    include_imports: true
  - local: /usr/bin/grpc_python_plugin
    out: gen
inputs:
  - directory: protos
`

// TestConsumingTeam is a team that gets nothing from us but the release's
// protos tarball and image, in an empty directory with its own
// buf.gen.yaml: buf generate works, Debian's protoc 3.21 compiles every
// proto (buf/validate included), and buf breaking against our image passes
// its compatible change and fails its breaking one.
func TestConsumingTeam(t *testing.T) {
	t.Parallel()
	need(t, "/usr/bin/protoc", "/usr/bin/grpc_python_plugin", python, "tar")
	buf := bufBinary(t)
	dir := t.TempDir()
	tarball := artifact(t, "contract/acme-greeter-api-protos.tar.gz")
	image := artifact(t, "contract/acme-greeter-api.binpb")
	protos := filepath.Join(dir, "protos")
	if err := os.Mkdir(protos, 0o755); err != nil {
		t.Fatal(err)
	}
	runIn(t, dir, nil, "tar", "-xzf", tarball, "-C", protos)
	if err := os.WriteFile(filepath.Join(dir, "buf.gen.yaml"), []byte(consumerBufGen), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("buf generate", func(t *testing.T) {
		runIn(t, dir, nil, buf, "generate")
		for _, f := range []string{"acme/greeter/v1/greeter_pb2.py", "acme/greeter/v1/greeter_pb2_grpc.py", "buf/validate/validate_pb2.py", "helloworld/helloworld_pb2_grpc.py"} {
			if _, err := os.Stat(filepath.Join(dir, "gen", f)); err != nil {
				t.Errorf("buf generate wrote no %s: %v", f, err)
			}
		}
		// What it generated loads, with the predefined rule on the field.
		out := runIn(t, filepath.Join(dir, "gen"), nil, python, "-c",
			"from acme.greeter.v1 import greeter_pb2, greeter_pb2_grpc; print(greeter_pb2.SayHelloRequest.DESCRIPTOR.fields_by_name['name'].GetOptions())")
		if !strings.Contains(out, "acme.greeter.v1.person_name") {
			t.Errorf("the generated SayHelloRequest.name lacks its rules:\n%s", out)
		}
	})

	t.Run("protoc", func(t *testing.T) {
		// Debian's protoc reads every proto, validate.proto (proto2) among
		// them; the well-known types come from its own include directory.
		// Debian's protoc 3.21 cannot read editions files: every proto of
		// the release must be proto2 or proto3.
		for _, f := range []string{"buf/validate/validate.proto", "acme/greeter/v1/name_rules.proto"} {
			data, err := os.ReadFile(filepath.Join(protos, f))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), "\nsyntax = \"proto2\";") {
				t.Errorf("%s is not proto2: Debian's protoc 3.21 reads no editions", f)
			}
		}
		files := []string{"acme/greeter/v1/greeter.proto", "acme/greeter/v1/name_rules.proto", "helloworld/helloworld.proto", "buf/validate/validate.proto"}
		args := append([]string{"-I", ".", "-o", filepath.Join(dir, "protoc.binpb")}, files...)
		runIn(t, protos, nil, "/usr/bin/protoc", args...)
	})

	t.Run("buf breaking against the release image", func(t *testing.T) {
		tests := map[string]struct {
			old, new string
			breaks   bool
		}{
			"new field": {
				old: "message SayHelloResponse {\n",
				new: "message SayHelloResponse {\n  // locale is new.\n  string locale = 2;\n",
			},
			"field renamed": {
				old:    "  string name = 1 [\n",
				new:    "  string full_name = 1 [\n",
				breaks: true,
			},
			"rpc removed": {
				old:    "  rpc SayHelloAgain(SayHelloAgainRequest) returns (SayHelloAgainResponse) {\n    option idempotency_level = NO_SIDE_EFFECTS;\n  }\n",
				new:    "",
				breaks: true,
			},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				changed := filepath.Join(t.TempDir(), "protos")
				runIn(t, dir, nil, "cp", "-R", protos, changed)
				proto := filepath.Join(changed, "acme/greeter/v1/greeter.proto")
				data, err := os.ReadFile(proto)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(data), tc.old) {
					t.Fatalf("greeter.proto does not contain %q: the test is out of date with the contract", tc.old)
				}
				if err := os.WriteFile(proto, []byte(strings.Replace(string(data), tc.old, tc.new, 1)), 0o644); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(buf, "breaking", changed, "--against", image)
				cmd.Dir = dir
				out, err := cmd.CombinedOutput()
				switch {
				case tc.breaks && err == nil:
					t.Errorf("buf breaking passed a breaking change:\n%s", out)
				case !tc.breaks && err != nil:
					t.Errorf("buf breaking failed a compatible change: %v\n%s", err, out)
				}
			})
		}
	})
}

// bufBinary is the path of the buf pinned in tools/go.mod, built by the go
// command, to run outside the repository.
func bufBinary(t *testing.T) string {
	t.Helper()
	cmd, err := repo.ToolCommand(t.Context(), root, "-n", "buf")
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go tool -n buf: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestPublishDryRun runs the release's publish step with --dry-run on the
// packages just built: npm publish --dry-run and twine check --strict.
func TestPublishDryRun(t *testing.T) {
	t.Parallel()
	need(t, "npm", "node", python)
	out := runIn(t, root, nil, "bash", filepath.Join(root, "scripts/publish-api.sh"), "--dry-run", dist)
	if !strings.Contains(out, "publish-api: @acme/greeter-api@0.0.0-dev (npm dist-tag next)") {
		t.Errorf("publish-api.sh --dry-run printed:\n%s", out)
	}
}
