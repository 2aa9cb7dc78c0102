package modproxy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme/greeter/tools/internal/modproxy"
)

func writeModule(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":   "module example.com/lib\n\ngo 1.26\n",
		"lib.go":   "package lib\n\n// Greeting is what lib says.\nconst Greeting = \"" + content + "\"\n",
		"x/doc.go": "// Package x is nested.\npackage x\n",
	}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPublish(t *testing.T) {
	t.Parallel()
	proxy := t.TempDir()
	first, err := modproxy.Publish(proxy, writeModule(t, "hello"), "v1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	if first.Path != "example.com/lib" || first.Version.Version != "v1.2.0" {
		t.Errorf("published %v", first.Version)
	}
	if !strings.HasPrefix(first.Sum, "h1:") || !strings.HasPrefix(first.GoModSum, "h1:") {
		t.Errorf("sums %q %q are not h1 hashes", first.Sum, first.GoModSum)
	}
	if _, err := modproxy.Publish(proxy, writeModule(t, "hello"), "v1.10.0"); err != nil {
		t.Fatal(err)
	}
	list, err := os.ReadFile(filepath.Join(proxy, "example.com/lib/@v/list"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(list)); strings.Join(got, " ") != "v1.2.0 v1.10.0" {
		t.Errorf("version list = %v, want semver order", got)
	}
	for _, ext := range []string{".zip", ".mod", ".info"} {
		if _, err := os.Stat(filepath.Join(proxy, "example.com/lib/@v/v1.2.0"+ext)); err != nil {
			t.Error(err)
		}
	}

	// The sum follows the content, not the version.
	same, err := modproxy.Publish(t.TempDir(), writeModule(t, "hello"), "v1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	changed, err := modproxy.Publish(t.TempDir(), writeModule(t, "changed"), "v1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	if same.Sum != first.Sum || changed.Sum == first.Sum {
		t.Errorf("sums: first %s, same content %s, changed content %s", first.Sum, same.Sum, changed.Sum)
	}

	for _, bad := range []string{"1.2.0", "v1.2", "latest"} {
		if _, err := modproxy.Publish(t.TempDir(), writeModule(t, "x"), bad); err == nil {
			t.Errorf("version %q must be rejected", bad)
		}
	}
}

func TestWriteGoSum(t *testing.T) {
	t.Parallel()
	sum := filepath.Join(t.TempDir(), "go.sum")
	old := "example.com/lib v1.2.0 h1:old=\nexample.com/lib v1.2.0/go.mod h1:oldmod=\nexample.com/other v0.1.0 h1:keep=\n"
	if err := os.WriteFile(sum, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	pub, err := modproxy.Publish(t.TempDir(), writeModule(t, "hello"), "v1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := modproxy.CheckGoSum(sum, pub); err == nil {
		t.Error("CheckGoSum accepts a go.sum with stale lines")
	}
	if err := modproxy.WriteGoSum(sum, pub); err != nil {
		t.Fatal(err)
	}
	if err := modproxy.CheckGoSum(sum, pub); err != nil {
		t.Errorf("CheckGoSum after WriteGoSum: %v", err)
	}
	got, err := os.ReadFile(sum)
	if err != nil {
		t.Fatal(err)
	}
	want := "example.com/lib v1.2.0 " + pub.Sum + "\nexample.com/lib v1.2.0/go.mod " + pub.GoModSum + "\nexample.com/other v0.1.0 h1:keep=\n"
	if string(got) != want {
		t.Errorf("go.sum =\n%s\nwant\n%s", got, want)
	}
}
