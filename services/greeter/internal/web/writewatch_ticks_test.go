package web

import (
	"net"
	"testing"
	"time"
)

// TestWriteWatchStalledAfterTimeout: a write is closed on the first look
// at which it has certainly waited the timeout (it began at most a look's
// interval after the tick it noted), not one look sooner.
func TestWriteWatchStalledAfterTimeout(t *testing.T) {
	for _, tc := range []struct {
		timeout  time.Duration
		began    int64 // the tick the write noted
		notYet   int64 // the last tick it is left alone
		closedBy int64
	}{
		{timeout: time.Second, began: 0, notYet: 10, closedBy: 11}, // looks every 100ms
		{timeout: time.Second, began: 7, notYet: 17, closedBy: 18},
		{timeout: 25 * time.Second, began: 3, notYet: 28, closedBy: 29},    // every second, at most
		{timeout: 50 * time.Millisecond, began: 0, notYet: 5, closedBy: 6}, // every 10ms, at least
	} {
		w := newWriteWatch(tc.timeout, func(net.Addr) {})
		c := &watchedConn{w: w}
		w.conns[c] = struct{}{}
		c.writingSince.Store(tc.began + 1)
		if got := w.stalled(tc.notYet); len(got) != 0 {
			t.Errorf("timeout %v, write after tick %d: closed at tick %d, before the timeout", tc.timeout, tc.began, tc.notYet)
		}
		if got := w.stalled(tc.closedBy); len(got) != 1 {
			t.Errorf("timeout %v, write after tick %d: still open at tick %d, past the timeout", tc.timeout, tc.began, tc.closedBy)
		}
	}
}
