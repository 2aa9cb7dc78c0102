// Package protodeps materialises third-party protos from Go modules.
//
// The Buf Schema Registry is out of reach, so buf cannot fetch `deps`. The
// protovalidate protos are published in the Go module
// github.com/bufbuild/protovalidate instead; its version is pinned by
// tools/go.mod and its content checksummed by tools/go.sum, so the Go module
// proxy gives every machine the same bytes. Materialise copies them to where
// buf.yaml expects a workspace module.
package protodeps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Dep is one Go module whose proto tree becomes a buf workspace module.
type Dep struct {
	// Module is the Go module path, required by tools/go.mod.
	Module string
	// Tree is the directory inside the module that holds the protos, laid
	// out by import path.
	Tree string
	// Dest is the buf workspace module directory, relative to the repo root.
	Dest string
}

// Protovalidate is the only third-party proto dependency of the contract.
var Protovalidate = Dep{
	Module: "github.com/bufbuild/protovalidate",
	Tree:   "proto/protovalidate",
	Dest:   "third_party/protovalidate",
}

// Materialise downloads (or finds in the module cache) the version of dep
// that toolsDir/go.mod requires and copies its .proto files below
// repoRoot/dep.Dest, replacing what was there. It returns the module version.
func Materialise(repoRoot, toolsDir string, dep Dep) (string, error) {
	dir, version, err := download(toolsDir, dep.Module)
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, filepath.FromSlash(dep.Tree))
	dest := filepath.Join(repoRoot, filepath.FromSlash(dep.Dest))
	if err := os.RemoveAll(dest); err != nil {
		return "", fmt.Errorf("clear %s: %w", dest, err)
	}
	copied := 0
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".proto" {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		target := filepath.Join(dest, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		copied++
		// The module cache is read-only; the copy must not be, or the next
		// RemoveAll fails.
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		return "", fmt.Errorf("copy %s@%s/%s: %w", dep.Module, version, dep.Tree, err)
	}
	if copied == 0 {
		return "", fmt.Errorf("%s@%s has no .proto files under %s", dep.Module, version, dep.Tree)
	}
	return version, nil
}

// download asks the go command, run in toolsDir, for the module's directory
// in the module cache. The go command resolves the version from go.mod and
// verifies the download against go.sum.
func download(toolsDir, module string) (dir, version string, err error) {
	cmd := exec.Command("go", "mod", "download", "-json", module)
	cmd.Dir = toolsDir
	// go.work would not change the answer, but GOWORK=off keeps the lookup
	// confined to tools/go.mod even when run from a copy of the repo.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var info struct {
		Dir, Version, Error string
	}
	if jsonErr := json.Unmarshal(out, &info); jsonErr != nil && runErr == nil {
		runErr = jsonErr
	}
	switch {
	case info.Error != "":
		return "", "", fmt.Errorf("go mod download %s: %s", module, info.Error)
	case runErr != nil:
		return "", "", fmt.Errorf("go mod download %s: %w: %s", module, runErr, strings.TrimSpace(stderr.String()))
	case info.Dir == "":
		return "", "", errors.New("go mod download " + module + ": no directory reported")
	}
	return info.Dir, info.Version, nil
}
