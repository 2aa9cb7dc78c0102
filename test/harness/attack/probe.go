package attack

import (
	"context"
	"fmt"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// probeTimeout is how long a probe waits for SERVING.
const probeTimeout = 2 * time.Second

// Probe checks the health of addr as a Kubernetes probe does: a fresh
// connection from ip, one Health/Check, SERVING within probeTimeout.
func Probe(ctx context.Context, ip, addr string) error {
	conn, err := DialFrom(ip, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("status %v", resp.GetStatus())
	}
	return nil
}

// Probes is what a series of probes met.
type Probes struct {
	// N counts the probes made.
	N int
	// Errs are the failed probes'.
	Errs []error
}

// OK counts the probes answered SERVING.
func (p Probes) OK() int { return p.N - len(p.Errs) }

// ProbeEvery probes addr from ProbeIP every interval until stop is closed;
// the function it returns waits for the last probe and reports them all.
func ProbeEvery(addr string, interval time.Duration, stop <-chan struct{}) func() Probes {
	var out Probes
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			out.N++
			if err := Probe(context.Background(), ProbeIP, addr); err != nil {
				out.Errs = append(out.Errs, fmt.Errorf("probe %d: %w", out.N, err))
			}
		}
	}()
	return func() Probes {
		<-done
		return out
	}
}
