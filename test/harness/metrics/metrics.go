// Package metrics reads a server's Prometheus metrics, as a scraper does:
// GET /metrics on its admin address, parsed by the Prometheus client
// libraries' own exposition parser.
package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Snapshot is one scrape: the metric families by name.
type Snapshot map[string]*dto.MetricFamily

// scrapeTimeout bounds one scrape.
const scrapeTimeout = 5 * time.Second

// Scrape reads http://addr/metrics.
func Scrape(ctx context.Context, addr string) (Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	// The text format: what every Prometheus server understands.
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET http://%s/metrics: %s", addr, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse http://%s/metrics: %w", addr, err)
	}
	return Snapshot(families), nil
}

// Sum adds the values of the counter, gauge or untyped samples of metric
// name whose labels include every pair of labels (others may be present). An
// absent metric sums to 0.
func (s Snapshot) Sum(name string, labels map[string]string) float64 {
	family, ok := s[name]
	if !ok {
		return 0
	}
	var sum float64
	for _, m := range family.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	found := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			found++
		}
	}
	return found == len(want)
}

// Collect makes the server at addr, started with --pprof, run a garbage
// collection (the heap profile's gc=1), so that the heap in use a scrape
// reads next is what the server holds, not garbage not yet collected: how
// much of that there is depends on GOGC, which the greeter raises
// (docs/performance.md).
func Collect(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET http://%s/debug/pprof/heap?gc=1: %s (is --pprof on?)", addr, resp.Status)
	}
	return nil
}
