package contractci_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/acme/greeter/tools/internal/contractci"
	"github.com/acme/greeter/tools/internal/repotest"
)

// TestClassify classifies changes made in the working tree of a real clone
// since its HEAD.
func TestClassify(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		change func(t *testing.T, dir string)
		want   contractci.Change
	}{
		"nothing changed": {change: func(*testing.T, string) {}, want: contractci.Change{Kind: contractci.NoChange}},
		"only the changelog and the Go code": {change: func(t *testing.T, dir string) {
			repotest.WriteFile(t, dir, "gen/go/x.pb.go", "package x\n")
			repotest.WriteFile(t, dir, contractci.Changelog, "# Changelog\n")
		}, want: contractci.Change{Kind: contractci.NoChange}},
		"a field in v1": {change: func(t *testing.T, dir string) {
			repotest.WriteFile(t, dir, v1+"/greeter.proto", "syntax = \"proto3\";\nmessage A {}\n")
		}, want: contractci.Change{Kind: contractci.Additive, Packages: []string{v1}}},
		"a new first package": {change: func(t *testing.T, dir string) {
			repotest.WriteFile(t, dir, "api/acme/billing/v1/billing.proto", "syntax = \"proto3\";\n")
		}, want: contractci.Change{Kind: contractci.Additive, Packages: []string{"api/acme/billing/v1"}}},
		"a new major package, untracked": {change: func(t *testing.T, dir string) {
			repotest.WriteFile(t, dir, v4+"/greeter.proto", "syntax = \"proto3\";\n")
		}, want: contractci.Change{Kind: contractci.NewMajor, Packages: []string{v4}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := newReleased(t)
			tc.change(t, c.dir)
			got := contractci.Classify(c.Git(), c.head, contractci.Guard{})
			if got.Kind != tc.want.Kind || !slices.Equal(got.Packages, tc.want.Packages) {
				t.Errorf("Classify = %+v, want %+v", got, tc.want)
			}
			if got.String() == "" || strings.Contains(got.String(), "%!") {
				t.Errorf("the change reads %q", got.String())
			}
		})
	}
}
