// Package methodmap keeps a value per gRPC method, for the interceptors that
// read one on every RPC (the access log's handlers, the metrics' series).
package methodmap

import (
	"maps"
	"sync"
	"sync/atomic"
)

// Map maps full method names ("/pkg.Service/Method") to values made the
// first time a method is asked for. Reads take no lock: the map is replaced
// whole when a method is added, which happens once per method, so the
// copying costs nothing per RPC. The zero Map is empty and ready to use.
type Map[V any] struct {
	m  atomic.Pointer[map[string]V]
	mu sync.Mutex // serialises additions
}

// Load returns fullMethod's value, if it has one.
func (m *Map[V]) Load(fullMethod string) (V, bool) {
	if p := m.m.Load(); p != nil {
		v, ok := (*p)[fullMethod]
		return v, ok
	}
	var zero V
	return zero, false
}

// LoadOrMake returns fullMethod's value, calling newValue for it if it has
// none yet; newValue runs at most once per method. Callers try Load first,
// so that the common case builds no closure.
func (m *Map[V]) LoadOrMake(fullMethod string, newValue func() V) V {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := map[string]V{}
	if old := m.m.Load(); old != nil {
		if v, ok := (*old)[fullMethod]; ok {
			return v
		}
		next = maps.Clone(*old)
	}
	v := newValue()
	next[fullMethod] = v
	m.m.Store(&next)
	return v
}
