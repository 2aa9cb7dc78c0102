package main

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"

	"github.com/acme/greeter/services/greeter/internal/config"
	"github.com/acme/greeter/services/greeter/internal/memlimit"
)

// TestPlanMemorySetsGoMemLimit: whatever decides the memory the server
// plans for — the flag, else the cgroup's limit, else the default (a
// machine without a limit, as this test's usually is) — the Go runtime's
// memory limit is set from it, so the collector keeps the heap within what
// the server's limits assume.
func TestPlanMemorySetsGoMemLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, flag := range []int64{0, 128 << 20} {
		debug.SetMemoryLimit(before)
		planned, err := planMemory(config.Config{MemoryLimit: flag}, quiet)
		if err != nil || planned <= 0 || (flag != 0 && planned != flag) {
			t.Fatalf("--memory-limit %d: planMemory = %d, %v", flag, planned, err)
		}
		want := int64(float64(planned) * memlimit.GoMemLimitRatio)
		if limit := debug.SetMemoryLimit(-1); limit < want-1<<20 || limit > want+1<<20 {
			t.Errorf("--memory-limit %d: planned for %d, GOMEMLIMIT %d, want %d (%.0f%%)", flag, planned, limit, want, memlimit.GoMemLimitRatio*100)
		}
	}
}
