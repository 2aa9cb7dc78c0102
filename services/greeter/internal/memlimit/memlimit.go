// Package memlimit decides how much memory the server plans for, and sets
// the Go runtime's soft memory limit (GOMEMLIMIT) from it, leaving room for
// what the runtime does not count and for the garbage collector to work
// before the container's hard limit is reached.
//
// The cgroup limit is read by github.com/KimMachineGun/automemlimit (cgroup
// v2 memory.max, with its parents; cgroup v1 memory.limit_in_bytes), which
// also sets GOMEMLIMIT, unless the environment sets GOMEMLIMIT itself or
// AUTOMEMLIMIT=off.
package memlimit

import (
	"errors"
	"fmt"
	"math"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// GoMemLimitRatio is the share of the memory limit GOMEMLIMIT is set to:
// automemlimit's default, which leaves a tenth for memory the Go runtime
// does not manage.
const GoMemLimitRatio = 0.9

// Source says where a limit came from.
type Source string

// The sources of a limit.
const (
	SourceFlag    Source = "flag"
	SourceCgroup  Source = "cgroup"
	SourceDefault Source = "default" // nothing limits the process
)

// noLimit is the smallest value a cgroup reports for "unlimited" in
// practice (cgroup v1 reports 2^63 rounded down to a page).
const noLimit = 1 << 62

// Limit is the memory limit to plan for: flag when positive, else the
// cgroup's limit (read by cgroup), else fallback. cgroup is
// memlimit.FromCgroup in production.
func Limit(flag int64, cgroup func() (uint64, error), fallback int64) (int64, Source, error) {
	if flag > 0 {
		return flag, SourceFlag, nil
	}
	n, err := cgroup()
	switch {
	case err == nil && n > 0 && n < noLimit:
		return int64(n), SourceCgroup, nil
	case err == nil, errors.Is(err, memlimit.ErrNoLimit), errors.Is(err, memlimit.ErrNoCgroup), errors.Is(err, memlimit.ErrCgroupsNotSupported):
		return fallback, SourceDefault, nil
	default:
		// A cgroup that cannot be read is not a reason not to serve: plan
		// for the fallback, and say why.
		return fallback, SourceDefault, fmt.Errorf("read the cgroup memory limit: %w", err)
	}
}

// FromCgroup is automemlimit's reader of the process's cgroup memory limit.
func FromCgroup() (uint64, error) { return memlimit.FromCgroup() }

// SetGoMemLimit sets GOMEMLIMIT to GoMemLimitRatio of limit and returns the
// limit now in force; GOMEMLIMIT or AUTOMEMLIMIT in the environment win.
func SetGoMemLimit(limit int64) (int64, error) {
	if limit <= 0 || limit > math.MaxInt64/2 {
		return 0, fmt.Errorf("memory limit %d out of range", limit)
	}
	return memlimit.Set(memlimit.WithRatio(GoMemLimitRatio), memlimit.WithProvider(memlimit.Limit(uint64(limit))))
}
