package admission

import (
	"context"
	"encoding/binary"
	"math"
	"net"
	"reflect"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// What a response stream on the gRPC port may have handed to grpc-go and
// not yet had written to its connection; its next send waits until one
// is written.
//
// grpc-go bounds what it queues for a stream by message bytes (a write
// quota of 64 KiB), not by the buffers each message holds: a stream of tiny
// messages to a client that grants no flow-control window queued thousands,
// most of a MiB, faster than any sample of the memory, and a burst of such
// streams outran the memory budget (docs/reliability.md, "Stuck readers").
// Counted in messages, what a stalled stream can queue is known when it is
// admitted.
const (
	// QueuedPerStream is how many unwritten messages every response stream
	// may have, whatever the others hold.
	QueuedPerStream = 32
	// QueuedShared is how many unwritten messages, all streams together,
	// past which no stream may have more than QueuedPerStream. Below it a
	// stream may queue as many as grpc-go's write quota takes, so a fast
	// stream's handler rarely waits for the connection's writer: waiting
	// every QueuedPerStream messages cost a lone stream a third more
	// server CPU per message. At about 200 bytes a queued message, 6.4 MiB.
	QueuedShared = 32 << 10
)

// Credentials wraps the gRPC port's transport credentials (for plaintext,
// insecure.NewCredentials()) so that what grpc-go writes to a connection
// the Controller's listener accepted, after TLS's decryption on the way in
// and before its encryption on the way out, is seen: the HTTP/2 frames
// tell how many of each response stream's messages have been written, and
// InterceptStream holds a stream's unwritten sends to QueuedPerStream, or
// more while all streams' together are fewer than QueuedShared.
//
// Counting frames is the only way to see it: grpc-go neither says when a
// message leaves its queue nor lets its write quota be set.
func Credentials(inner credentials.TransportCredentials) credentials.TransportCredentials {
	return watchedCredentials{inner}
}

type watchedCredentials struct {
	credentials.TransportCredentials
}

func (w watchedCredentials) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := w.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		return conn, info, err
	}
	tc, ok := raw.(*trackedConn)
	if !ok {
		return conn, info, nil
	}
	tc.out = &outbound{streams: map[uint32]*sendGate{}, shared: &tc.c.queued}
	wrapped := &outboundConn{Conn: conn, out: tc.out}
	tc.wrapped.Store(wrapped)
	return wrapped, info, nil
}

func (w watchedCredentials) Clone() credentials.TransportCredentials {
	return watchedCredentials{w.TransportCredentials.Clone()}
}

// outboundConn is a connection whose writes pass through its outbound.
type outboundConn struct {
	net.Conn
	out *outbound
	// mu is held by each write, so that a GOAWAY (goAway) goes between
	// two of grpc-go's, never into one.
	mu sync.Mutex
}

func (c *outboundConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.Conn.Write(p)
	c.out.wrote(p[:n])
	return n, err
}

func (c *outboundConn) Close() error {
	err := c.Conn.Close()
	c.out.closed()
	return err
}

// outbound follows the HTTP/2 frames written to a connection and counts
// the gRPC messages written for each registered stream.
type outbound struct {
	shared  *atomic.Int64 // all streams' unwritten messages, the Controller's
	mu      sync.Mutex
	streams map[uint32]*sendGate
	gates   atomic.Int32 // len(streams): no lookup while none

	// The writer's place in the framing, and the highest stream written
	// to. grpc-go writes a connection from one goroutine, its loopy
	// writer; outboundConn.mu orders its writes with a GOAWAY's.
	lastStream uint32
	head       [9]byte
	headN      int       // bytes of head read
	left       uint32    // bytes of the current frame's payload still to come
	gate       *sendGate // the current frame's stream's, if a registered stream's DATA
	padded     bool      // the current DATA frame's pad length is still to come
	pad        uint32    // its trailing padding
}

const (
	frameData      = 0x0
	frameHeaders   = 0x1
	frameRSTStream = 0x3
	flagEndStream  = 0x1
	flagPadded     = 0x8
	frameHeader    = 9
)

// wrote follows p, the next bytes written to the connection.
func (o *outbound) wrote(p []byte) {
	for len(p) > 0 {
		if o.headN < frameHeader {
			n := copy(o.head[o.headN:], p)
			o.headN += n
			p = p[n:]
			if o.headN < frameHeader {
				return
			}
			o.startFrame()
			continue
		}
		n := min(uint32(len(p)), o.left)
		chunk := p[:n]
		p = p[n:]
		o.left -= n
		if o.gate != nil {
			o.data(chunk)
		}
		if o.left == 0 {
			o.headN = 0
		}
	}
}

func (o *outbound) startFrame() {
	o.left = uint32(o.head[0])<<16 | uint32(o.head[1])<<8 | uint32(o.head[2])
	o.gate, o.padded, o.pad = nil, false, 0
	id := binary.BigEndian.Uint32(o.head[5:]) & (1<<31 - 1)
	o.lastStream = max(o.lastStream, id)
	if o.gates.Load() > 0 {
		switch typ, flags := o.head[3], o.head[4]; {
		case typ == frameData:
			o.mu.Lock()
			o.gate = o.streams[id]
			o.mu.Unlock()
			o.padded = flags&flagPadded != 0
		case typ == frameHeaders && flags&flagEndStream != 0, typ == frameRSTStream:
			// The stream's trailers follow all it queued; a reset drops
			// what is left.
			o.end(id)
		}
	}
	if o.left == 0 {
		o.headN = 0
	}
}

// data passes a DATA frame's payload, less its padding, to its gate.
// o.left is what follows b in the frame.
func (o *outbound) data(b []byte) {
	if o.padded {
		o.padded = false
		o.pad = uint32(b[0])
		b = b[1:]
	}
	if o.pad > o.left {
		b = b[:len(b)-int(min(o.pad-o.left, uint32(len(b))))]
	}
	o.gate.wrote(b)
}

// register starts counting stream id's messages.
func (o *outbound) register(id uint32) *sendGate {
	g := &sendGate{wake: make(chan struct{}, 1), shared: o.shared}
	o.mu.Lock()
	o.streams[id] = g
	o.gates.Store(int32(len(o.streams)))
	o.mu.Unlock()
	return g
}

// end stops counting stream id's messages, if it is counted, and takes
// those left unwritten off the shared count.
func (o *outbound) end(id uint32) {
	o.mu.Lock()
	g := o.streams[id]
	delete(o.streams, id)
	o.gates.Store(int32(len(o.streams)))
	o.mu.Unlock()
	if g != nil {
		g.end()
	}
}

// handlerReturned is called as stream id's handler returns. What it
// queued stays queued, and counted, until its trailers or a reset are
// written (startFrame): grpc-go writes a finished stream's messages before
// its trailers, and keeps them until the client reads them. Only when
// grpc-go itself cancelled the stream's context (the client reset the
// stream, or the connection closed) has it dropped them already.
func (o *outbound) handlerReturned(ctx context.Context, id uint32) {
	if ctx.Err() != nil && context.Cause(ctx) == context.Canceled {
		o.end(id)
	}
}

// closed stops counting every stream: the connection is closed, and
// grpc-go drops all it queued.
func (o *outbound) closed() {
	o.mu.Lock()
	streams := o.streams
	o.streams = map[uint32]*sendGate{}
	o.gates.Store(0)
	o.mu.Unlock()
	for _, g := range streams {
		g.end()
	}
}

// sendGate is one response stream's count of messages handed to grpc-go
// and written to its connection.
type sendGate struct {
	// unwritten are the messages handed to grpc-go, less those whose last
	// byte was written; gone and below once unregistered.
	unwritten atomic.Int64
	shared    *atomic.Int64
	waiting   atomic.Bool
	wake      chan struct{}

	// The writer's place in the stream's gRPC framing: a 5-byte prefix
	// (compressed flag, length) then the message. The writer's only.
	prefixN int
	msgLeft uint32
}

// wrote follows b, the next payload bytes written for the stream.
func (g *sendGate) wrote(b []byte) {
	for len(b) > 0 {
		if g.prefixN < 5 {
			if g.prefixN > 0 {
				g.msgLeft = g.msgLeft<<8 | uint32(b[0])
			}
			g.prefixN++
			b = b[1:]
			if g.prefixN == 5 && g.msgLeft == 0 {
				g.message()
			}
			continue
		}
		n := min(uint32(len(b)), g.msgLeft)
		g.msgLeft -= n
		b = b[n:]
		if g.msgLeft == 0 {
			g.message()
		}
	}
}

// gone marks a sendGate unregistered: far below any count of messages.
const gone = math.MinInt64 / 2

// handed notes a message handed to grpc-go. The handler's goroutine only.
func (g *sendGate) handed() {
	g.unwritten.Add(1)
	g.shared.Add(1)
}

// end takes the stream's unwritten messages off the shared count, once.
func (g *sendGate) end() {
	if n := g.unwritten.Swap(gone); n > gone/2 {
		g.shared.Add(-n)
	}
}

// message notes a message written whole.
func (g *sendGate) message() {
	g.prefixN, g.msgLeft = 0, 0
	// A stream unregistered meanwhile took its unwritten messages, this
	// one among them or not, off the shared count when it swapped in gone.
	if g.unwritten.Add(-1) > gone/2 {
		g.shared.Add(-1)
	}
	if g.waiting.Load() {
		select {
		case g.wake <- struct{}{}:
		default:
		}
	}
}

// room reports whether the stream may hand grpc-go one more message.
func (g *sendGate) room() bool {
	n := g.unwritten.Load()
	return n < QueuedPerStream || g.shared.Load() < QueuedShared
}

// wait returns once the stream has room for a message, or with the
// stream's status once ctx is done. Its own messages written wake it: once
// fewer than QueuedPerStream are unwritten it has room, whatever the
// others hold.
func (g *sendGate) wait(ctx context.Context) error {
	for !g.room() {
		g.waiting.Store(true)
		if g.room() {
			g.waiting.Store(false)
			break
		}
		select {
		case <-g.wake:
		case <-ctx.Done():
			g.waiting.Store(false)
			return status.FromContextError(ctx.Err()).Err()
		}
		g.waiting.Store(false)
	}
	return nil
}

// streamIDField is where grpc-go keeps a server stream's HTTP/2 stream ID:
// transport.ServerStream embeds transport.Stream, whose id is unexported,
// and nothing else of an RPC names its stream. Read by reflection, once
// per stream; TestStreamIDOfEveryStream fails if grpc-go moves it.
var streamIDField atomic.Pointer[streamIDIndex]

type streamIDIndex struct {
	typ   reflect.Type
	index []int
}

// streamID is the HTTP/2 stream ID of the RPC whose stream context is ctx.
func streamID(ctx context.Context) (uint32, bool) {
	st := grpc.ServerTransportStreamFromContext(ctx)
	if st == nil {
		return 0, false
	}
	v := reflect.ValueOf(st)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return 0, false
	}
	v = v.Elem()
	idx := streamIDField.Load()
	if idx == nil || idx.typ != v.Type() {
		f, ok := v.Type().FieldByName("id")
		if !ok || f.Type.Kind() != reflect.Uint32 {
			return 0, false
		}
		idx = &streamIDIndex{typ: v.Type(), index: f.Index}
		streamIDField.Store(idx)
	}
	f, err := v.FieldByIndexErr(idx.index)
	if err != nil {
		return 0, false
	}
	return uint32(f.Uint()), true
}
