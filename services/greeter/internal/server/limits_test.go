package server

import "testing"

// TestConnectionDefaults: the connection caps left at 0 are derived from the
// memory limit at MemoryPerConnection each within ConnectionMemoryShare,
// a quarter of that per client; those set are kept.
func TestConnectionDefaults(t *testing.T) {
	for _, tc := range []struct {
		name                string
		opts                []Option
		wantMax, wantClient int
	}{
		{"default plan, 256 MiB", nil, 2048, 512},
		{"the least plan, 64 MiB", []Option{WithMemoryLimit(MinMemoryLimit)}, 512, 128},
		{"1 GiB", []Option{WithMemoryLimit(1 << 30)}, 8192, 2048},
		{"set", []Option{WithMaxConnections(100), WithMaxConnectionsPerClient(10)}, 100, 10},
		{"per client derived from the set cap", []Option{WithMaxConnections(100)}, 100, 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultOptions()
			for _, opt := range tc.opts {
				if err := opt(&o); err != nil {
					t.Fatal(err)
				}
			}
			l, err := o.admissionLimits()
			if err != nil {
				t.Fatal(err)
			}
			if l.MaxConnections != tc.wantMax || l.MaxConnectionsPerClient != tc.wantClient {
				t.Errorf("MaxConnections %d, per client %d; want %d, %d", l.MaxConnections, l.MaxConnectionsPerClient, tc.wantMax, tc.wantClient)
			}
		})
	}
}
