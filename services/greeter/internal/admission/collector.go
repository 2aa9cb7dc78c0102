package admission

import (
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The garbage collector's target under memory pressure. The server runs
// with a high GOGC (400: the heap may grow to five times what is live
// between collections) because it keeps little live and collections were
// a large share of its CPU. Under a crowd that opens and is refused tens of
// thousands of streams a second, what is live stays small (37 MiB) while
// the garbage its refusals leave grows to four times that: the heap reached
// 163 MiB between two collections and the process 222–235 MiB RSS, past
// what the memory plan allows for a crowd, with the RPCs' measured memory
// near its budget for garbage alone. GOMEMLIMIT (90% of the limit) is the
// runtime's last resort, not a target. So, as Envoy's overload manager
// shrinks its heap at a threshold, the Controller lowers GOGC to
// pressuredGCPercent once the memory RPCs hold, garbage included, reaches
// lowerGCAt of the budget, and gives the previous target back once it has
// stayed under restoreGCBelow for restoreGCAfter. The same crowd then
// peaks at 136–157 MiB (docs/reliability.md).
const (
	pressuredGCPercent = 100
	lowerGCAt          = 0.5
	restoreGCBelow     = 0.25
	// restoreGCAfter keeps the lowered target while a crowd's churn comes
	// and goes: right after a collection the pressure is low, and the
	// high target restored then would let the garbage grow back at once.
	restoreGCAfter = 10 * time.Second
)

// collectorTarget follows the memory pressure with the garbage collector's
// target. Only the Controller's Run touches it.
type collectorTarget struct {
	// get and set read and set GOGC: gcPercent and debug.SetGCPercent, or
	// a test's.
	get func() int
	set func(int) int
	// restore is the target to give back, 0 while not lowered.
	restore  int
	calmFrom time.Time // since when the pressure has been under restoreGCBelow
}

// follow lowers or restores the target at pressure p, logging each change.
// A target already at pressuredGCPercent or lower, or GOGC=off, is the
// operator's choice and left alone.
func (t *collectorTarget) follow(p float64, now time.Time, log *slog.Logger) {
	switch {
	case t.restore == 0 && p >= lowerGCAt:
		cur := t.get()
		if cur <= pressuredGCPercent {
			return
		}
		t.set(pressuredGCPercent)
		t.restore, t.calmFrom = cur, time.Time{}
		log.Info("memory pressure: collecting garbage sooner", "gogc", pressuredGCPercent, "was", cur, "memory_pressure", p)
	case t.restore == 0:
	case p >= restoreGCBelow:
		t.calmFrom = time.Time{}
	case t.calmFrom.IsZero():
		t.calmFrom = now
	case now.Sub(t.calmFrom) >= restoreGCAfter:
		t.set(t.restore)
		log.Info("memory pressure over: garbage collection target restored", "gogc", t.restore, "memory_pressure", p)
		t.restore = 0
	}
}

// giveBack restores the target if it is lowered, without a log line: the
// Controller is stopping.
func (t *collectorTarget) giveBack() {
	if t.restore != 0 {
		t.set(t.restore)
		t.restore = 0
	}
}

// gcPercent is the garbage collector's target now (GOGC), -1 for off: read
// from runtime/metrics, as debug.SetGCPercent cannot read it without
// setting it.
func gcPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return -1
	}
	// GOGC=off is the runtime's -1, read as an unsigned value.
	return int(int32(s[0].Value.Uint64()))
}

func newCollectorTarget() collectorTarget {
	return collectorTarget{get: gcPercent, set: debug.SetGCPercent}
}
