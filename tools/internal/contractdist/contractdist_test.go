package contractdist_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/acme/greeter/tools/internal/contractdist"
	"github.com/acme/greeter/tools/internal/repo"
)

func TestParseVersion(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		in      string
		want    contractdist.Version
		wantErr bool
	}{
		"empty is the dev version": {in: "", want: contractdist.Dev},
		"release":                  {in: "1.2.3", want: contractdist.Version{NPM: "1.2.3", Python: "1.2.3"}},
		"leading v":                {in: "v1.2.3", want: contractdist.Version{NPM: "1.2.3", Python: "1.2.3"}},
		"release candidate":        {in: "1.2.3-rc.1", want: contractdist.Version{NPM: "1.2.3-rc.1", Python: "1.2.3rc1"}},
		"alpha":                    {in: "2.0.0-alpha.0", want: contractdist.Version{NPM: "2.0.0-alpha.0", Python: "2.0.0a0"}},
		"beta":                     {in: "0.9.0-beta.12", want: contractdist.Version{NPM: "0.9.0-beta.12", Python: "0.9.0b12"}},
		"the whole tag":            {in: "api/v1.2.3", wantErr: true},
		"two parts":                {in: "1.2", wantErr: true},
		"leading zero":             {in: "1.02.3", wantErr: true},
		"other pre-release":        {in: "1.2.3-dev", wantErr: true},
		"build metadata":           {in: "1.2.3+abc", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := contractdist.ParseVersion(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseVersion(%q) = %+v, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseVersion(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestBuild builds the artifacts twice and proves they are the same bytes,
// then looks inside each: what a consuming team unpacks.
func TestBuild(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := repo.TestRoot(t)
	version, err := contractdist.ParseVersion("1.2.3-rc.1")
	if err != nil {
		t.Fatal(err)
	}
	dirs := []string{filepath.Join(t.TempDir(), "dist"), filepath.Join(t.TempDir(), "dist")}
	var lists [][]string
	for _, dir := range dirs {
		artifacts, err := contractdist.Build(ctx, root, dir, version, contractdist.DefaultEpoch)
		if err != nil {
			t.Fatal(err)
		}
		lists = append(lists, artifacts)
	}
	want := []string{
		contractdist.Sums,
		contractdist.Docs,
		contractdist.Protos,
		contractdist.Image,
		"npm/acme-greeter-api-1.2.3-rc.1.tgz",
		"python/acme_greeter_api-1.2.3rc1-py3-none-any.whl",
	}
	slices.Sort(want)
	for i, list := range lists {
		slices.Sort(list)
		if !slices.Equal(list, want) {
			t.Fatalf("build %d made %q, want %q", i, list, want)
		}
	}
	for _, rel := range want {
		a, b := read(t, filepath.Join(dirs[0], rel)), read(t, filepath.Join(dirs[1], rel))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds of the same tree: not reproducible", rel)
		}
	}
	dist := dirs[0]

	sums := string(read(t, filepath.Join(dist, contractdist.Sums)))
	for _, rel := range want {
		if rel != contractdist.Sums && !strings.Contains(sums, "  "+filepath.Base(rel)+"\n") {
			t.Errorf("SHA256SUMS lacks %s:\n%s", rel, sums)
		}
	}

	t.Run("image", func(t *testing.T) {
		set := &descriptorpb.FileDescriptorSet{}
		if err := proto.Unmarshal(read(t, filepath.Join(dist, contractdist.Image)), set); err != nil {
			t.Fatal(err)
		}
		files := map[string]*descriptorpb.FileDescriptorProto{}
		for _, f := range set.GetFile() {
			files[f.GetName()] = f
		}
		for _, name := range []string{"acme/greeter/v1/greeter.proto", "acme/greeter/v1/name_rules.proto", "helloworld/helloworld.proto", "buf/validate/validate.proto", "google/protobuf/duration.proto"} {
			if files[name] == nil {
				t.Errorf("the image lacks %s (both contracts with their imports)", name)
			}
		}
		if f := files["acme/greeter/v1/greeter.proto"]; f != nil && !strings.Contains(commentsOf(f), "GreeterService greets people") {
			t.Error("the image has no source info: the comments are missing")
		}
	})

	t.Run("protos tarball", func(t *testing.T) {
		names := tarNames(t, filepath.Join(dist, contractdist.Protos))
		wantNames := []string{"acme/greeter/v1/greeter.proto", "acme/greeter/v1/name_rules.proto", "buf.yaml", "buf/validate/validate.proto", "helloworld/helloworld.proto"}
		if !slices.Equal(names, wantNames) {
			t.Errorf("protos tarball holds %q, want %q (sorted)", names, wantNames)
		}
	})

	t.Run("docs tarball", func(t *testing.T) {
		names := tarNames(t, filepath.Join(dist, contractdist.Docs))
		if !slices.Contains(names, "api/acme.greeter.v1.md") || !slices.Contains(names, "api/README.md") {
			t.Errorf("docs tarball holds %q", names)
		}
	})

	t.Run("npm package", func(t *testing.T) {
		files := tarFiles(t, read(t, filepath.Join(dist, "npm/acme-greeter-api-1.2.3-rc.1.tgz")))
		var pkg struct{ Name, Version string }
		if err := json.Unmarshal(files["package/package.json"], &pkg); err != nil {
			t.Fatal(err)
		}
		if pkg.Name != "@acme/greeter-api" || pkg.Version != "1.2.3-rc.1" {
			t.Errorf("package.json names %s@%s", pkg.Name, pkg.Version)
		}
		for _, name := range []string{"package/index.js", "package/index.d.ts", "package/gen/acme/greeter/v1/greeter_pb.js", "package/gen/buf/validate/validate_pb.d.ts"} {
			if _, ok := files[name]; !ok {
				t.Errorf("npm package lacks %s", name)
			}
		}
		committed := read(t, filepath.Join(root, "sdk/ts/gen/acme/greeter/v1/greeter_pb.js"))
		if !bytes.Equal(files["package/gen/acme/greeter/v1/greeter_pb.js"], committed) {
			t.Error("the npm package's greeter_pb.js is not the committed one")
		}
	})

	t.Run("python wheel", func(t *testing.T) {
		data := read(t, filepath.Join(dist, "python/acme_greeter_api-1.2.3rc1-py3-none-any.whl"))
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		files := map[string]*zip.File{}
		for _, f := range zr.File {
			files[f.Name] = f
		}
		for _, name := range []string{
			"acme/greeter/v1/greeter_pb2.py", "acme/greeter/v1/greeter_pb2.pyi", "acme/greeter/v1/greeter_pb2_grpc.py",
			"buf/validate/validate_pb2.py", "helloworld/helloworld_pb2_grpc.py", "acme/greeter/v1/py.typed",
		} {
			if files[name] == nil {
				t.Errorf("wheel lacks %s", name)
			}
		}
		meta := files["acme_greeter_api-1.2.3rc1.dist-info/METADATA"]
		if meta == nil {
			t.Fatal("wheel has no METADATA for version 1.2.3rc1")
		}
		rc, err := meta.Open()
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(rc)
		for _, want := range []string{"Version: 1.2.3rc1", "Requires-Dist: protobuf (>=4.21.12)", "Requires-Dist: grpcio (>=1.51.1)"} {
			if !strings.Contains(string(text), want) {
				t.Errorf("METADATA lacks %q:\n%s", want, text)
			}
		}
	})
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func tarFiles(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = body
	}
}

// tarNames is the entries of a .tar.gz in archive order.
func tarNames(t *testing.T, path string) []string {
	t.Helper()
	names, err := contractdist.List(path)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func commentsOf(f *descriptorpb.FileDescriptorProto) string {
	var b strings.Builder
	for _, loc := range f.GetSourceCodeInfo().GetLocation() {
		b.WriteString(loc.GetLeadingComments())
	}
	return b.String()
}
