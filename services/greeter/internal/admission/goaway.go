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

// goAwayWriteTimeout bounds the GOAWAY's write: an idle client's socket
// takes it at once; one that reads nothing is closed without it.
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
// (an idle connection's every stream has been answered), if grpc-go's
// writer is between two frames and not writing; it reports whether it
// wrote it.
func (c *outboundConn) goAway() bool {
	if !c.mu.TryLock() {
		return false // grpc-go is writing, perhaps blocked on its client
	}
	defer c.mu.Unlock()
	o := c.out
	if o.headN != 0 || o.left != 0 {
		return false
	}
	var f [frameHeader + 8 + len(goAwayText)]byte
	payload := len(f) - frameHeader
	f[0], f[1], f[2] = byte(payload>>16), byte(payload>>8), byte(payload)
	f[3] = frameGoAway
	binary.BigEndian.PutUint32(f[frameHeader:], o.lastStream)
	// The error code, NO_ERROR, is 0.
	copy(f[frameHeader+8:], goAwayText)
	_ = c.Conn.SetWriteDeadline(time.Now().Add(goAwayWriteTimeout))
	_, err := c.Conn.Write(f[:])
	return err == nil
}
