// Package modproxy publishes modules of this repository into a file-based
// GOPROXY, as if they had been released.
//
// The services and clients require github.com/acme/greeter/gen/go at a real
// version with no replace directive, because they ship on their own release
// cycles. Before a version is tagged and served by a real proxy, a directory
// written by Publish, listed first in GOPROXY, stands in for it: the go
// command then resolves, checksums and builds each module exactly as a user
// outside this repository would.
package modproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/zip"
)

// Published is a module version written to a file proxy.
type Published struct {
	module.Version
	// Sum and GoModSum are the go.sum hashes of the module's content and of
	// its go.mod.
	Sum, GoModSum string
}

// Publish packs the module rooted at moduleDir as version into the file
// proxy at proxyDir. Publishing the same version twice overwrites it.
func Publish(proxyDir, moduleDir, version string) (Published, error) {
	if !semver.IsValid(version) || semver.Canonical(version) != version {
		return Published{}, fmt.Errorf("version %q is not a canonical semantic version such as v1.2.3", version)
	}
	gomod, err := os.ReadFile(filepath.Join(moduleDir, "go.mod"))
	if err != nil {
		return Published{}, fmt.Errorf("read go.mod: %w", err)
	}
	path := modfile.ModulePath(gomod)
	if path == "" {
		return Published{}, fmt.Errorf("%s/go.mod names no module", moduleDir)
	}
	escaped, err := module.EscapePath(path)
	if err != nil {
		return Published{}, fmt.Errorf("escape module path %q: %w", path, err)
	}
	vdir := filepath.Join(proxyDir, filepath.FromSlash(escaped), "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return Published{}, err
	}

	var zipped bytes.Buffer
	mv := module.Version{Path: path, Version: version}
	if err := zip.CreateFromDir(&zipped, mv, moduleDir); err != nil {
		return Published{}, fmt.Errorf("zip %s: %w", mv, err)
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Unix(0, 0).UTC()})
	if err != nil {
		return Published{}, err
	}
	files := map[string][]byte{
		version + ".zip":  zipped.Bytes(),
		version + ".mod":  gomod,
		version + ".info": info,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(vdir, name), data, 0o644); err != nil {
			return Published{}, err
		}
	}
	pub := Published{Version: mv}
	if pub.Sum, err = dirhash.HashZip(filepath.Join(vdir, version+".zip"), dirhash.Hash1); err != nil {
		return Published{}, err
	}
	if pub.GoModSum, err = dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gomod)), nil
	}); err != nil {
		return Published{}, err
	}
	return pub, writeList(vdir, version)
}

// WriteGoSum sets the go.sum lines of pub in the go.sum file at path,
// replacing any lines of the same module version. That is what an
// unreleased version needs whenever its content changes; a released
// version's lines never change.
func WriteGoSum(path string, pub Published) error {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	prefix := pub.Path + " " + pub.Version.Version
	var lines []string
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if line != "" && !strings.HasPrefix(line, prefix+" ") && !strings.HasPrefix(line, prefix+"/go.mod ") {
			lines = append(lines, line)
		}
	}
	lines = append(lines, prefix+" "+pub.Sum, prefix+"/go.mod "+pub.GoModSum)
	slices.Sort(lines)
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// CheckGoSum reports an error unless the go.sum file at path records
// exactly pub's hashes, as WriteGoSum writes them.
func CheckGoSum(path string, pub Published) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(string(data), "\n")
	prefix := pub.Path + " " + pub.Version.Version
	for _, want := range []string{prefix + " " + pub.Sum, prefix + "/go.mod " + pub.GoModSum} {
		if !slices.Contains(lines, want) {
			return fmt.Errorf("%s does not record the current content of the unreleased %s (want %q)", path, prefix, want)
		}
	}
	return nil
}

// writeList adds version to the proxy's version list, keeping it sorted.
func writeList(vdir, version string) error {
	listFile := filepath.Join(vdir, "list")
	old, err := os.ReadFile(listFile)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	versions := strings.Fields(string(old))
	if !slices.Contains(versions, version) {
		versions = append(versions, version)
	}
	semver.Sort(versions)
	return os.WriteFile(listFile, []byte(strings.Join(versions, "\n")+"\n"), 0o644)
}

// Sandbox is a file proxy plus a private module cache. The go command
// caches a module version forever once downloaded, so a republished
// version of an unreleased gen/go would be served stale from the shared
// module cache; each Sandbox starts with an empty cache instead. Third-party
// modules are still found offline: the shared cache's download directory is
// itself a GOPROXY, listed second.
type Sandbox struct {
	// ProxyDir is the file proxy that Publish writes to.
	ProxyDir string
	// ModCache is the private GOMODCACHE.
	ModCache string
	env      []string
}

// NewSandbox creates a sandbox in dir, which must be empty or absent.
// upstream is the GOPROXY to fall back to and sharedCache the usual
// GOMODCACHE (both as `go env` prints them).
func NewSandbox(dir, upstream, sharedCache string) (*Sandbox, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Sandbox{ProxyDir: filepath.Join(dir, "proxy"), ModCache: filepath.Join(dir, "modcache")}
	for _, d := range []string{s.ProxyDir, s.ModCache} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if upstream == "" || upstream == "off" {
		upstream = "https://proxy.golang.org,direct"
	}
	proxies := []string{fileURL(s.ProxyDir)}
	if sharedCache != "" {
		proxies = append(proxies, fileURL(filepath.Join(sharedCache, "cache", "download")))
	}
	s.env = []string{
		"GOPROXY=" + strings.Join(proxies, ",") + "," + upstream,
		"GOMODCACHE=" + s.ModCache,
		// Writable, so Close can remove it.
		"GOFLAGS=-modcacherw",
		// The public checksum database has never seen these modules; the
		// consumers' go.sum files are what pin them.
		"GONOSUMDB=github.com/acme/greeter",
		"GOPRIVATE=",
		"GONOPROXY=",
		"GOWORK=off",
	}
	return s, nil
}

// Publish packs the module in moduleDir into the sandbox's proxy as version.
func (s *Sandbox) Publish(moduleDir, version string) (Published, error) {
	return Publish(s.ProxyDir, moduleDir, version)
}

// Env is the environment, added to os.Environ(), that runs the go command
// against the sandbox with GOWORK=off.
func (s *Sandbox) Env() []string {
	return append(os.Environ(), s.env...)
}

// Close removes the sandbox's module cache and proxy.
func (s *Sandbox) Close() error {
	return errors.Join(os.RemoveAll(s.ModCache), os.RemoveAll(s.ProxyDir))
}

func fileURL(dir string) string {
	return "file://" + filepath.ToSlash(dir)
}

// PublishGitRef publishes the module in subdir of repoDir as it is at git
// ref (a released tag, say), rather than as it is in the working tree.
func (s *Sandbox) PublishGitRef(repoDir, ref, subdir, version string) (Published, error) {
	tmp, err := os.MkdirTemp("", "greeter-ref-")
	if err != nil {
		return Published{}, err
	}
	defer os.RemoveAll(tmp)
	archive := exec.Command("git", "archive", "--format=tar", ref, "--", subdir)
	archive.Dir = repoDir
	tarball, err := archive.Output()
	if err != nil {
		return Published{}, fmt.Errorf("git archive %s -- %s: %w", ref, subdir, err)
	}
	untar := exec.Command("tar", "-x", "-C", tmp)
	untar.Stdin = bytes.NewReader(tarball)
	if out, err := untar.CombinedOutput(); err != nil {
		return Published{}, fmt.Errorf("extract %s: %w: %s", ref, err, out)
	}
	return s.Publish(filepath.Join(tmp, filepath.FromSlash(subdir)), version)
}

// TagExists reports whether repoDir has the git tag.
func TagExists(repoDir, tag string) bool {
	cmd := exec.Command("git", "rev-parse", "--verify", "--quiet", "refs/tags/"+tag)
	cmd.Dir = repoDir
	return cmd.Run() == nil
}

// GenModule is the generated-code module the server and the CLI require,
// and GenDir its directory in the repository (also its tag prefix).
const (
	GenModule = "github.com/acme/greeter/gen/go"
	GenDir    = "gen/go"
)

// Requirements returns the module versions the go.mod in moduleDir
// requires, direct and indirect, by module path.
func Requirements(moduleDir string) (map[string]string, error) {
	name := filepath.Join(moduleDir, "go.mod")
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	f, err := modfile.ParseLax(name, data, nil)
	if err != nil {
		return nil, err
	}
	reqs := map[string]string{}
	for _, r := range f.Require {
		reqs[r.Mod.Path] = r.Mod.Version
	}
	return reqs, nil
}

// RequiredVersion returns the version of modulePath that the go.mod in
// moduleDir requires, or an error if it requires none.
func RequiredVersion(moduleDir, modulePath string) (string, error) {
	reqs, err := Requirements(moduleDir)
	if err != nil {
		return "", err
	}
	if v, ok := reqs[modulePath]; ok {
		return v, nil
	}
	return "", fmt.Errorf("%s does not require %s", filepath.Join(moduleDir, "go.mod"), modulePath)
}

// PublishGen publishes gen/go of the repository at repoDir as version, as
// a user would get it: from its tag gen/go/<version> once released, from
// the working tree before. released reports which; an unreleased version's
// go.sum lines follow its content (see WriteGoSum).
func (s *Sandbox) PublishGen(repoDir, version string) (pub Published, released bool, err error) {
	if tag := GenDir + "/" + version; TagExists(repoDir, tag) {
		pub, err = s.PublishGitRef(repoDir, tag, GenDir, version)
		return pub, true, err
	}
	pub, err = s.Publish(filepath.Join(repoDir, filepath.FromSlash(GenDir)), version)
	return pub, false, err
}
