// Package readmostly is a map read on every RPC and added to a handful of
// times in a process's life: the access log's handlers and the metrics'
// series per method, the validator's fast-path plan per message type, the
// HTTP port's header names in lower case and its request counters.
package readmostly

import (
	"maps"
	"sync"
	"sync/atomic"
)

// Map maps keys to values made the first time a key is asked for. Reads
// take no lock: the map is replaced whole when a key is added, which
// happens once per key, so the copying costs nothing per read. The zero Map
// is empty and ready to use.
type Map[K comparable, V any] struct {
	m  atomic.Pointer[map[K]V]
	mu sync.Mutex // serialises additions
}

// Load returns key's value, if it has one.
func (m *Map[K, V]) Load(key K) (V, bool) {
	if p := m.m.Load(); p != nil {
		v, ok := (*p)[key]
		return v, ok
	}
	var zero V
	return zero, false
}

// Len is the number of keys with a value.
func (m *Map[K, V]) Len() int {
	if p := m.m.Load(); p != nil {
		return len(*p)
	}
	return 0
}

// LoadOrMake returns key's value, calling newValue for it if it has none
// yet; newValue runs at most once per key. Callers try Load first, so that
// the common case builds no closure.
func (m *Map[K, V]) LoadOrMake(key K, newValue func() V) V {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := map[K]V{}
	if old := m.m.Load(); old != nil {
		if v, ok := (*old)[key]; ok {
			return v
		}
		next = maps.Clone(*old)
	}
	v := newValue()
	next[key] = v
	m.m.Store(&next)
	return v
}
