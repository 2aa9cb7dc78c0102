package admission

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestCollectorTarget: GOGC is lowered to pressuredGCPercent once the
// pressure reaches lowerGCAt, and the operator's target given back once the
// pressure has stayed under restoreGCBelow for restoreGCAfter; a target at
// or under pressuredGCPercent, or off, is never touched.
func TestCollectorTarget(t *testing.T) {
	type step struct {
		after    time.Duration // since the previous step
		pressure float64
		want     int // GOGC after it
	}
	for _, tc := range []struct {
		name  string
		gogc  int
		steps []step
	}{
		{"calm", 400, []step{{0, 0.1, 400}, {time.Second, 0.49, 400}}},
		{"lowered, then restored once calm long enough", 400, []step{
			{0, 0.5, pressuredGCPercent},
			{time.Second, 0.1, pressuredGCPercent},
			{restoreGCAfter / 2, 0.3, pressuredGCPercent}, // not calm: the count starts again
			{time.Second, 0.2, pressuredGCPercent},
			{restoreGCAfter - time.Second, 0.2, pressuredGCPercent},
			{time.Second, 0.2, 400},
			{time.Second, 0.6, pressuredGCPercent},
		}},
		{"the operator's low target", 50, []step{{0, 2, 50}, {time.Minute, 0, 50}}},
		{"GOGC=off", -1, []step{{0, 2, -1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gogc, sets := tc.gogc, 0
			target := collectorTarget{
				get: func() int { return gogc },
				set: func(p int) int { sets++; prev := gogc; gogc = p; return prev },
			}
			var logged bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logged, nil))
			now := time.Unix(1e9, 0)
			for i, s := range tc.steps {
				now = now.Add(s.after)
				target.follow(s.pressure, now, log)
				if gogc != s.want {
					t.Fatalf("step %d (pressure %.2f): GOGC %d, want %d", i, s.pressure, gogc, s.want)
				}
			}
			if lines := strings.Count(logged.String(), "\n"); lines != sets {
				t.Errorf("%d target changes, %d lines logged, want one each:\n%s", sets, lines, logged.String())
			}
			target.giveBack()
			if gogc != tc.gogc {
				t.Errorf("GOGC %d once the Controller stopped, want %d given back", gogc, tc.gogc)
			}
		})
	}
}

// TestGCPercent reads the runtime's target back as set, off included.
func TestGCPercent(t *testing.T) {
	prev := newCollectorTarget().set(250)
	t.Cleanup(func() { newCollectorTarget().set(prev) })
	for _, want := range []int{250, -1, 100} {
		newCollectorTarget().set(want)
		if got := gcPercent(); got != want {
			t.Errorf("GOGC set to %d, read %d", want, got)
		}
	}
}
