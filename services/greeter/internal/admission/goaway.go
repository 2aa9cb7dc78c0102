package admission

import (
	"encoding/binary"
	"time"
)

// An idle connection closed to make room, or for its idle timeout, is told
// so first with an HTTP/2 GOAWAY (NO_ERROR), as grpc-go's own
// MaxConnectionIdle does: its client then opens its next RPCs on a new
// connection, and one it sent as the connection closed, past the GOAWAY's
// last stream, is retried there transparently rather than failing
// UNAVAILABLE. grpc-go offers no GOAWAY for one connection, so the gRPC
// port's connection wrapper (Credentials), which already follows the
// frames grpc-go writes, writes one between two of them. Connections of
// the HTTP port, and a connection whose writer is mid-frame or blocked,
// are closed without one, as before.

// goAwayWriteTimeout bounds the wait for grpc-go's writer and the GOAWAY's
// write: an idle connection's writer is free and its socket takes the
// frame at once; one whose client reads nothing is closed without it.
const goAwayWriteTimeout = 100 * time.Millisecond

const frameGoAway = 0x7

// goAwayText is the GOAWAY's debug data, for whoever reads it.
const goAwayText = "idle connection closed by the server's connection limits"

// goAwayAndClose closes t, which has no RPC in flight and is no longer counted,
// with a GOAWAY first where the connection serves the gRPC port: then from
// a goroutine of its own, since the write may wait for its client. Its
// RPCs that arrive meanwhile are refused (enter: it is gone), so that none
// runs that its client retries elsewhere.
func (t *trackedConn) goAwayAndClose() {
	w := t.wrapped.Load()
	if w == nil {
		t.Conn.Close()
		return
	}
	go func() {
		w.goAway()
		t.Conn.Close()
	}()
}

// goAway writes a GOAWAY naming the last stream the server has written to
// (an idle connection's every stream has been answered) once grpc-go's
// writer is between two frames and not writing, waiting for that at most
// goAwayWriteTimeout; it reports whether it wrote it.
func (c *outboundConn) goAway() bool {
	deadline := time.Now().Add(goAwayWriteTimeout)
	for {
		// TryLock, not Lock: a writer blocked on a client that reads
		// nothing holds the lock for as long as it is blocked.
		if c.mu.TryLock() {
			if c.out.headN == 0 && c.out.left == 0 {
				defer c.mu.Unlock()
				return c.writeGoAway(deadline)
			}
			c.mu.Unlock()
		}
		if time.Now().After(deadline) {
			return false
		}
		// An idle connection's writer is rarely busy (a PING's ack, a
		// window update), and never for long.
		time.Sleep(time.Millisecond)
	}
}

// writeGoAway writes the GOAWAY by deadline. Called with c.mu held, between
// two frames.
func (c *outboundConn) writeGoAway(deadline time.Time) bool {
	var f [frameHeader + 8 + len(goAwayText)]byte
	payload := len(f) - frameHeader
	f[0], f[1], f[2] = byte(payload>>16), byte(payload>>8), byte(payload)
	f[3] = frameGoAway
	binary.BigEndian.PutUint32(f[frameHeader:], c.out.lastStream)
	// The error code, NO_ERROR, is 0.
	copy(f[frameHeader+8:], goAwayText)
	_ = c.Conn.SetWriteDeadline(deadline)
	_, err := c.Conn.Write(f[:])
	return err == nil
}
