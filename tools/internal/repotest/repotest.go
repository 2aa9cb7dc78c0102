// Package repotest makes temporary copies of the repository for tests that
// plant a fault, or a whole change, and run the contract checks on it
// without touching the checkout.
package repotest

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme/greeter/tools/internal/repo"
)

// Copy copies the repository's tracked files, as they are in the working
// tree, plus the materialised third-party protos into a temporary
// directory that tb removes when it ends. The copy is not a git checkout.
// sdk/ts/node_modules (protoc-gen-es, installed by `npm ci`) is linked, so
// the TypeScript SDK generates in the copy too.
func Copy(tb testing.TB) string {
	tb.Helper()
	root := repo.TestRoot(tb)
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		tb.Fatalf("git ls-files: %v", err)
	}
	files := strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
	if _, err := os.Stat(filepath.Join(root, "third_party", "protovalidate", "buf", "validate", "validate.proto")); err != nil {
		tb.Fatalf("materialised protovalidate protos are missing (run `go tool protodeps`): %v", err)
	}
	err = filepath.WalkDir(filepath.Join(root, "third_party"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".proto" {
			return err
		}
		rel, err := filepath.Rel(root, path)
		files = append(files, rel)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	dst := tb.TempDir()
	for _, rel := range files {
		data, err := os.ReadFile(filepath.Join(root, rel))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			tb.Fatal(err)
		}
		WriteFile(tb, dst, rel, string(data))
	}
	if err := os.Symlink(filepath.Join(root, "sdk", "ts", "node_modules"), filepath.Join(dst, "sdk", "ts", "node_modules")); err != nil {
		tb.Fatal(err)
	}
	return dst
}

// Replace replaces the first old with new in the file rel below dir; old
// must occur, so a test out of date with the contract fails rather than
// passing for planting nothing.
func Replace(tb testing.TB, dir, rel, old, new string) {
	tb.Helper()
	data := ReadFile(tb, dir, rel)
	if !strings.Contains(data, old) {
		tb.Fatalf("%s does not contain %q: the test is out of date with the contract", rel, old)
	}
	WriteFile(tb, dir, rel, strings.Replace(data, old, new, 1))
}

// ReadFile returns the file rel below dir.
func ReadFile(tb testing.TB, dir, rel string) string {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		tb.Fatal(err)
	}
	return string(data)
}

// WriteFile writes content to the file rel below dir, creating its
// directories.
func WriteFile(tb testing.TB, dir, rel, content string) {
	tb.Helper()
	target := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(target, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}
