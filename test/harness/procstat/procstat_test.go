package procstat_test

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/acme/greeter/test/harness/procstat"
)

func TestReadSelf(t *testing.T) {
	before, err := procstat.Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.RSS <= 0 || before.PeakRSS < before.RSS {
		t.Errorf("RSS %d, peak %d", before.RSS, before.PeakRSS)
	}
	// Burn a little CPU; the clock tick is 10ms, so spin well past it.
	for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline); {
	}
	after, err := procstat.Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.CPU <= before.CPU {
		t.Errorf("CPU time did not grow: %v then %v", before.CPU, after.CPU)
	}
	if err := procstat.ResetPeak(os.Getpid()); err != nil {
		t.Logf("clear_refs unsupported here: %v", err)
	}
}

func TestAllowedCPUs(t *testing.T) {
	cpus, err := procstat.AllowedCPUs(0)
	if err != nil {
		t.Fatal(err)
	}
	// The Go runtime sizes GOMAXPROCS from the same mask.
	if len(cpus) == 0 || len(cpus) < runtime.GOMAXPROCS(0) && os.Getenv("GOMAXPROCS") == "" {
		t.Errorf("allowed CPUs %v, GOMAXPROCS %d", cpus, runtime.GOMAXPROCS(0))
	}
	for i := 1; i < len(cpus); i++ {
		if cpus[i] <= cpus[i-1] {
			t.Fatalf("not increasing: %v", cpus)
		}
	}
}
