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
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/zip"
)

// Publish packs the module rooted at moduleDir as version into the file
// proxy at proxyDir and returns the module path. Publishing the same version
// twice overwrites it; the checksum the go command records only depends on
// the module's file contents.
func Publish(proxyDir, moduleDir, version string) (string, error) {
	if !semver.IsValid(version) || semver.Canonical(version) != version {
		return "", fmt.Errorf("version %q is not a canonical semantic version such as v1.2.3", version)
	}
	gomod, err := os.ReadFile(filepath.Join(moduleDir, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("read go.mod: %w", err)
	}
	path := modfile.ModulePath(gomod)
	if path == "" {
		return "", fmt.Errorf("%s/go.mod names no module", moduleDir)
	}
	escaped, err := module.EscapePath(path)
	if err != nil {
		return "", fmt.Errorf("escape module path %q: %w", path, err)
	}
	vdir := filepath.Join(proxyDir, filepath.FromSlash(escaped), "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return "", err
	}

	var zipped bytes.Buffer
	mv := module.Version{Path: path, Version: version}
	if err := zip.CreateFromDir(&zipped, mv, moduleDir); err != nil {
		return "", fmt.Errorf("zip %s: %w", mv, err)
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Unix(0, 0).UTC()})
	if err != nil {
		return "", err
	}
	files := map[string][]byte{
		version + ".zip":  zipped.Bytes(),
		version + ".mod":  gomod,
		version + ".info": info,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(vdir, name), data, 0o644); err != nil {
			return "", err
		}
	}
	return path, writeList(vdir, version)
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

// Env returns the environment that makes the go command resolve modules
// from the file proxy at proxyDir first and fall back to upstream (the
// GOPROXY the caller would otherwise use) for everything else. Modules of
// this repository are kept out of the public checksum database, which has
// never seen them.
func Env(proxyDir, upstream string) []string {
	abs, err := filepath.Abs(proxyDir)
	if err != nil {
		abs = proxyDir
	}
	if upstream == "" || upstream == "off" {
		upstream = "https://proxy.golang.org,direct"
	}
	return []string{
		"GOPROXY=" + "file://" + filepath.ToSlash(abs) + "," + upstream,
		"GONOSUMDB=github.com/acme/greeter",
		"GOPRIVATE=",
		"GONOPROXY=",
		"GOWORK=off",
	}
}
