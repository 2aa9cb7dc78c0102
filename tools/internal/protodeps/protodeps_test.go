package protodeps_test

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/modfile"

	"github.com/acme/greeter/tools/internal/protodeps"
)

// toolsDir is the tools module, which pins the dependency.
const toolsDir = "../.."

// TestProtovalidatePinned guards the require line that `go mod tidy` would
// drop, since the module has no Go packages.
func TestProtovalidatePinned(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(toolsDir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Require {
		if r.Mod.Path == protodeps.Protovalidate.Module {
			if r.Indirect {
				t.Errorf("%s is marked // indirect; keep it a direct, commented requirement", r.Mod)
			}
			return
		}
	}
	t.Fatalf("tools/go.mod no longer requires %s (did `go mod tidy` drop it?): re-add it with "+
		"`go -C tools get %s@<version>`", protodeps.Protovalidate.Module, protodeps.Protovalidate.Module)
}

// repoRoot is the repository, where each Dep's PinnedBy is.
const repoRoot = "../../.."

func TestMaterialise(t *testing.T) {
	t.Parallel()
	// A file each must materialise, by import path.
	want := map[string]string{
		protodeps.Protovalidate.Module: "buf/validate/validate.proto",
		protodeps.Conformance.Module:   "connectrpc/conformance/v1/service.proto",
	}
	for _, dep := range protodeps.All {
		t.Run(dep.Module, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			stale := filepath.Join(root, dep.Dest, "stale.proto")
			if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(stale, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second run replaces the first's read-write copy
				version, err := protodeps.Materialise(root, filepath.Join(repoRoot, dep.PinnedBy), dep)
				if err != nil {
					t.Fatal(err)
				}
				if version == "" {
					t.Error("no version reported")
				}
			}
			if _, err := os.Stat(filepath.Join(root, dep.Dest, want[dep.Module])); err != nil {
				t.Errorf("%s not materialised: %v", want[dep.Module], err)
			}
			if _, err := os.Stat(stale); !os.IsNotExist(err) {
				t.Errorf("a file left from before survived: %v", err)
			}
		})
	}
}

func TestMaterialiseUnknownModule(t *testing.T) {
	t.Parallel()
	_, err := protodeps.Materialise(t.TempDir(), toolsDir, protodeps.Dep{
		Module: "example.com/not/required", Tree: "proto", Dest: "x",
	})
	if err == nil {
		t.Fatal("a module tools/go.mod does not require must fail")
	}
}
