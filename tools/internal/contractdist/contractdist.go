// Package contractdist builds the release artifacts of the contract, the
// job a schema registry would do for consuming teams, offline:
//
//	contract/acme-greeter-api.binpb          buf image of both contracts, imports and comments
//	contract/acme-greeter-api-protos.tar.gz  the protos at their import paths, buf/validate and a buf.yaml
//	contract/acme-greeter-api-docs.tar.gz    the API reference (docs/api)
//	npm/acme-greeter-api-<version>.tgz       the TypeScript SDK (npm pack of sdk/ts)
//	python/acme_greeter_api-<version>-py3-none-any.whl  the Python SDK (sdk/python)
//	SHA256SUMS                               of all of the above, by file name
//
// The same sources and version give the same bytes: tar entries are sorted,
// with fixed owners, modes and mtimes (SOURCE_DATE_EPOCH), gzip carries no
// timestamp, and npm pack and the wheel builder are given the same fixed
// time. The SDKs are packed from their committed generated code (the drift
// check proves it is what the protos give), so a release ships what was
// reviewed.
package contractdist

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/acme/greeter/tools/internal/protocheck"
	"github.com/acme/greeter/tools/internal/sdktools"
)

// The artifacts' names, relative to the output directory.
const (
	Image     = "contract/acme-greeter-api.binpb"
	Protos    = "contract/acme-greeter-api-protos.tar.gz"
	Docs      = "contract/acme-greeter-api-docs.tar.gz"
	NPMDir    = "npm"
	PythonDir = "python"
	Sums      = "SHA256SUMS"
)

// DefaultEpoch is the time stamped on every archive entry when
// SOURCE_DATE_EPOCH is not set: 1980-01-01T00:00:00Z, the earliest time a
// zip file (a wheel) can hold.
const DefaultEpoch = 315532800

// Version is one contract release version, spelled as each ecosystem
// wants it.
type Version struct {
	// NPM is the semantic version of the npm package: "1.2.3",
	// "1.2.3-rc.1", or "0.0.0-dev" for a build that is not a release.
	NPM string
	// Python is the PEP 440 version of the Python distribution: "1.2.3",
	// "1.2.3rc1", or "0.0.0.dev0".
	Python string
}

// Dev is the version of a build from a tree that is not a tagged release.
var Dev = Version{NPM: "0.0.0-dev", Python: "0.0.0.dev0"}

var versionPattern = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-(alpha|beta|rc)\.(0|[1-9][0-9]*))?$`)

// ParseVersion reads a release version, X.Y.Z or X.Y.Z-(alpha|beta|rc).N
// (the tag api/vX.Y.Z without its prefix); "" is Dev.
func ParseVersion(s string) (Version, error) {
	if s == "" {
		return Dev, nil
	}
	m := versionPattern.FindStringSubmatch(strings.TrimPrefix(s, "v"))
	if m == nil {
		return Version{}, fmt.Errorf("version %q: want X.Y.Z or X.Y.Z-alpha.N, -beta.N, -rc.N (the tag api/vX.Y.Z without api/v)", s)
	}
	release := m[1] + "." + m[2] + "." + m[3]
	if m[4] == "" {
		return Version{NPM: release, Python: release}, nil
	}
	pep440 := map[string]string{"alpha": "a", "beta": "b", "rc": "rc"}[m[4]]
	return Version{NPM: release + "-" + m[4] + "." + m[5], Python: release + pep440 + m[5]}, nil
}

// Epoch is the time stamped on archive entries: SOURCE_DATE_EPOCH when
// set, else DefaultEpoch.
func Epoch() (int64, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return DefaultEpoch, nil
	}
	epoch, err := strconv.ParseInt(s, 10, 64)
	if err != nil || epoch < DefaultEpoch {
		return 0, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970, from %d (1980, the zip format's first year) on", s, DefaultEpoch)
	}
	return epoch, nil
}

// Build writes every artifact for repoDir's contract into outDir, which it
// empties first, and returns their paths relative to outDir, sorted.
func Build(ctx context.Context, repoDir, outDir string, version Version, epoch int64) ([]string, error) {
	if err := sdktools.Check(repoDir); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(outDir); err != nil {
		return nil, err
	}
	for _, dir := range []string{"contract", NPMDir, PythonDir} {
		if err := os.MkdirAll(filepath.Join(outDir, dir), 0o755); err != nil {
			return nil, err
		}
	}
	work, err := os.MkdirTemp("", "greeter-dist-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	if err := protocheck.BuildImage(ctx, repoDir, filepath.Join(outDir, Image)); err != nil {
		return nil, err
	}
	if err := buildProtos(ctx, repoDir, filepath.Join(work, "protos"), filepath.Join(outDir, Protos), version, epoch); err != nil {
		return nil, err
	}
	docs, err := filesBelow(filepath.Join(repoDir, "docs", "api"))
	if err != nil {
		return nil, err
	}
	if err := writeTarGz(filepath.Join(outDir, Docs), filepath.Join(repoDir, "docs"), prefixed("api/", docs), epoch); err != nil {
		return nil, err
	}
	if err := buildNPM(ctx, repoDir, filepath.Join(work, "npm"), filepath.Join(outDir, NPMDir), version, epoch); err != nil {
		return nil, err
	}
	if err := buildPython(ctx, repoDir, filepath.Join(work, "python"), filepath.Join(outDir, PythonDir), version, epoch); err != nil {
		return nil, err
	}
	artifacts, err := filesBelow(outDir)
	if err != nil {
		return nil, err
	}
	if err := writeSums(outDir, artifacts); err != nil {
		return nil, err
	}
	return append(artifacts, Sums), nil
}

// protosBufYAML is the buf.yaml of the protos tarball: the directory is one
// buf module, so `buf generate DIR` and `buf breaking DIR` work in an empty
// directory.
const protosBufYAML = `# The greeter contract, version %s: acme.greeter.v1 (stable) and helloworld
# (the frozen gRPC tutorial contract), with the protovalidate protos they
# import (buf/validate/validate.proto). The well-known types
# (google/protobuf/*.proto) come with buf and with protoc.
version: v2
`

// buildProtos exports the contract with its imports (buf export) into dir,
// adds the buf.yaml and archives it as out.
func buildProtos(ctx context.Context, repoDir, dir, out string, version Version, epoch int64) error {
	if _, err := protocheck.Buf(ctx, repoDir, "export", protocheck.ContractPath, "--output", dir); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "buf.yaml"), []byte(fmt.Sprintf(protosBufYAML, version.NPM)), 0o644); err != nil {
		return err
	}
	files, err := filesBelow(dir)
	if err != nil {
		return err
	}
	return writeTarGz(out, dir, files, epoch)
}

// npmFiles are what sdk/ts packs, besides package.json (see its "files").
var npmFiles = []string{"README.md", "index.js", "index.d.ts", "gen"}

// buildNPM packs sdk/ts, with the release version, into outDir.
func buildNPM(ctx context.Context, repoDir, stage, outDir string, version Version, epoch int64) error {
	src := filepath.Join(repoDir, "sdk", "ts")
	for _, name := range append([]string{"package.json"}, npmFiles...) {
		if err := copyTree(filepath.Join(src, name), filepath.Join(stage, name)); err != nil {
			return err
		}
	}
	env := append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(epoch, 10))
	if err := run(ctx, stage, env, "npm", "pkg", "set", "version="+version.NPM); err != nil {
		return err
	}
	abs, err := filepath.Abs(outDir)
	if err != nil {
		return err
	}
	return run(ctx, stage, env, "npm", "pack", "--ignore-scripts", "--silent", "--pack-destination", abs)
}

// pyprojectVersion is the version line of sdk/python/pyproject.toml.
var pyprojectVersion = regexp.MustCompile(`(?m)^version = ".*"$`)

// buildPython builds the wheel of sdk/python, with the release version,
// into outDir, offline: Debian's python3-build without an isolated
// environment (no index to fetch setuptools from).
func buildPython(ctx context.Context, repoDir, stage, outDir string, version Version, epoch int64) error {
	src := filepath.Join(repoDir, "sdk", "python")
	for _, name := range []string{"pyproject.toml", "README.md", "src"} {
		if err := copyTree(filepath.Join(src, name), filepath.Join(stage, name)); err != nil {
			return err
		}
	}
	pyproject := filepath.Join(stage, "pyproject.toml")
	data, err := os.ReadFile(pyproject)
	if err != nil {
		return err
	}
	if !pyprojectVersion.Match(data) {
		return fmt.Errorf("sdk/python/pyproject.toml has no line `version = \"...\"` to set the version in")
	}
	data = pyprojectVersion.ReplaceAll(data, []byte(`version = "`+version.Python+`"`))
	if err := os.WriteFile(pyproject, data, 0o644); err != nil {
		return err
	}
	abs, err := filepath.Abs(outDir)
	if err != nil {
		return err
	}
	env := append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(epoch, 10), "PYTHONDONTWRITEBYTECODE=1")
	return run(ctx, stage, env, sdktools.Python, "-m", "build", "--no-isolation", "--wheel", "--outdir", abs, ".")
}

// writeSums writes SHA256SUMS in outDir, in sha256sum's format, by file
// name: the release attaches the files side by side.
func writeSums(outDir string, artifacts []string) error {
	var b strings.Builder
	for _, rel := range artifacts {
		data, err := os.ReadFile(filepath.Join(outDir, rel))
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(sum[:]), filepath.Base(rel))
	}
	return os.WriteFile(filepath.Join(outDir, Sums), []byte(b.String()), 0o644)
}

// writeTarGz archives files (slash paths relative to root) into out:
// sorted, regular files only, mode 0644, owner 0, mtime epoch, and gzip
// without a name or a timestamp.
func writeTarGz(out, root string, files []string, epoch int64) error {
	files = slices.Sorted(slices.Values(files))
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	mtime := time.Unix(epoch, 0).UTC()
	for _, rel := range files {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     rel,
			Mode:     0o644,
			Size:     int64(len(data)),
			ModTime:  mtime,
			Format:   tar.FormatPAX,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// filesBelow lists the regular files below dir as sorted slash paths
// relative to it.
func filesBelow(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	slices.Sort(files)
	return files, err
}

func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

// copyTree copies the file or directory src to dst, files with mode 0644,
// so that what is packed does not depend on the checkout's umask.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
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
}

func run(ctx context.Context, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// List returns the names of the files inside an artifact, a .tar.gz or
// .tgz (the protos, the docs, the npm package) or a .whl (the Python
// wheel), in archive order: what a consuming team unpacks.
func List(artifact string) ([]string, error) {
	if strings.HasSuffix(artifact, ".whl") {
		zr, err := zip.OpenReader(artifact)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		names := make([]string, 0, len(zr.File))
		for _, f := range zr.File {
			names = append(names, f.Name)
		}
		return names, nil
	}
	f, err := os.Open(artifact)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", artifact, err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", artifact, err)
		}
		names = append(names, hdr.Name)
	}
}
