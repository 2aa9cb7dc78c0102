package bench

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPinsWithoutTaskset: without taskset the benchmark runs unpinned and
// says why, rather than failing or pinning half-way.
func TestPinsWithoutTaskset(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	p := choosePins()
	if p.pinned() || !strings.Contains(p.describe(), "taskset (util-linux) is not installed") {
		t.Errorf("without taskset: %+v, %q", p, p.describe())
	}
}

func TestPinsWithTaskset(t *testing.T) {
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset is not installed here")
	}
	p := choosePins()
	if p.pinned() == (p.why != "") || (p.pinned() && p.server == p.client) {
		t.Errorf("pins %+v", p)
	}
}
