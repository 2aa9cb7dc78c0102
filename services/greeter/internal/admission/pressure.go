package admission

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"time"
)

// The runtime/metrics the Controller follows: reading them takes a few
// microseconds and stops nothing, unlike runtime.ReadMemStats.
var runtimeMetrics = []string{
	"/memory/classes/heap/objects:bytes", // live objects and garbage not yet swept
	"/memory/classes/heap/stacks:bytes",  // goroutine stacks: one per RPC
	"/gc/cycles/total:gc-cycles",
}

var (
	samplesMu sync.Mutex
	samples   = func() []metrics.Sample {
		s := make([]metrics.Sample, len(runtimeMetrics))
		for i, name := range runtimeMetrics {
			s[i].Name = name
		}
		return s
	}()
)

// readRuntimeMemory is what the Go runtime holds for the program, heap
// objects and stacks, and how many collections have completed.
func readRuntimeMemory() (held int64, gcs uint64) {
	samplesMu.Lock()
	defer samplesMu.Unlock()
	metrics.Read(samples)
	return int64(samples[0].Value.Uint64() + samples[1].Value.Uint64()), samples[2].Value.Uint64()
}

// sampleEvery is how often the Controller reads the memory held, reaps
// and sheds: at most this long, less for timeouts shorter than 8 of it.
const sampleEvery = 100 * time.Millisecond

// forceGCEvery bounds how often a Controller over its budget collects
// garbage itself before it sheds: with GOGC at 400 the heap may be four
// fifths garbage, and refusing or shedding for garbage would be wrong; a
// collection at most once a second, only under pressure, is cheap beside
// refusing work.
const forceGCEvery = time.Second

// sample reads what RPCs hold now, collecting garbage first if that is over
// the budget and the runtime has not collected for forceGCEvery; it
// returns the pressure, what RPCs hold over the budget (0 without one).
func (c *Controller) sample(lastGC *time.Time, gcSeen *uint64) float64 {
	held, gcs := c.readMemory()
	now := c.now()
	if gcs != *gcSeen {
		*gcSeen, *lastGC = gcs, now
	}
	budget := c.limits.MaxRPCMemory
	if budget > 0 && held-c.baseline > budget && now.Sub(*lastGC) >= forceGCEvery {
		runtime.GC()
		held, gcs = c.readMemory()
		*gcSeen, *lastGC = gcs, c.now()
	}
	rpc := max(0, held-c.baseline)
	c.mu.Lock()
	c.rpcMemory.Store(rpc)
	c.chargedAtSample = c.charged
	c.readAt = now
	c.mu.Unlock()
	c.m.RPCMemory.Set(float64(rpc))
	if budget <= 0 {
		c.m.MemoryPressure.Set(0)
		return 0
	}
	p := float64(rpc) / float64(budget)
	c.m.MemoryPressure.Set(p)
	return p
}

// rereadEvery bounds how often reread reads the memory held between two
// samples.
const rereadEvery = 10 * time.Millisecond

// reread reads what RPCs hold again, when an RPC would be refused on the
// estimates of the RPCs admitted since the last sample, and reports whether
// it did. An estimate (RPCCost) is what an RPC holds on average once it
// runs; in a burst the RPCs admitted since the sample hold less so far,
// and their estimates refused RPCs the memory had room for (slow streams
// opened at once, docs/reliability.md). What is measured decides; RPCs admitted in the last rereadEvery and not yet
// holding what they will are missed until the next reading. Called with
// c.mu held.
func (c *Controller) reread() bool {
	now := c.now()
	if c.charged <= c.chargedAtSample || now.Sub(c.readAt) < rereadEvery {
		return false
	}
	held, _ := c.readMemory()
	c.rpcMemory.Store(max(0, held-c.baseline))
	c.chargedAtSample = c.charged
	c.readAt = now
	return true
}

// scaled is timeout d at pressure p: d up to half the budget, then shorter
// in proportion, down to a tenth of d at the budget and beyond (Envoy's
// reduce_timeouts), so that the RPCs that hold without progress go first
// and quickly as memory fills.
func scaled(d time.Duration, p float64) time.Duration {
	const from, floor = 0.5, 0.1
	switch {
	case p <= from:
		return d
	case p >= 1:
		return time.Duration(float64(d) * floor)
	}
	return time.Duration(float64(d) * (1 - (p-from)/(1-from)*(1-floor)))
}
