package procstat_test

import (
	"os"
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
