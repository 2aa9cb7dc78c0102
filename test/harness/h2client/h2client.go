// Package h2client is a hand-written HTTP/2 client for hostile-client tests:
// it speaks the protocol with golang.org/x/net/http2's Framer, so a test can
// do what no gRPC library would — open streams and never send their request,
// trickle a message byte by byte, ignore the server's stream limit, reset
// streams as fast as it opens them, flood PINGs or SETTINGS — and see what
// the server answered: each stream's end (a gRPC status or a RST_STREAM
// code) and the connection's (GOAWAY, close).
//
// The client answers the server's PINGs and acknowledges its SETTINGS, so it
// stays alive to keepalive like a real client, and it never sends
// WINDOW_UPDATE: it reads nothing the server sends beyond the initial
// 64 KiB windows, or the window WithInitialWindowSize grants.
package h2client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Option configures Dial.
type Option func(*config)

type config struct {
	localIP   string
	authority string
	settings  []http2.Setting
}

// WithLocalIP dials from ip, e.g. "127.0.0.2": every address of 127.0.0.0/8
// is loopback on Linux, so tests can play several clients, each with its own
// address, as servers key per-client limits by it.
func WithLocalIP(ip string) Option { return func(c *config) { c.localIP = ip } }

// WithInitialWindowSize grants the server a flow-control window of n bytes
// on every stream (SETTINGS_INITIAL_WINDOW_SIZE): at 0 it may send no
// response message at all, so whatever it sends queues on its side.
func WithInitialWindowSize(n uint32) Option {
	return func(c *config) {
		c.settings = append(c.settings, http2.Setting{ID: http2.SettingInitialWindowSize, Val: n})
	}
}

// Conn is one HTTP/2 connection (prior knowledge, no TLS).
type Conn struct {
	conn net.Conn

	wmu    sync.Mutex // guards the framer's writes and the encoder
	fr     *http2.Framer
	henc   *hpack.Encoder
	hbuf   bytes.Buffer
	nextID uint32
	cfg    config

	mu        sync.Mutex
	ends      map[uint32]End
	goAway    *http2.GoAwayFrame
	peerMax   uint32 // the server's SETTINGS_MAX_CONCURRENT_STREAMS, 0 until known
	settled   chan struct{}
	pingsAckd atomic.Int64
	dataBytes atomic.Int64

	done    chan struct{} // closed when the read loop ends
	readErr error
}

// End is how the server ended one stream: a gRPC status in trailers
// (Status >= 0), or a RST_STREAM (Reset true, with its Code).
type End struct {
	Status  int // grpc-status, -1 if none
	Message string
	Reset   bool
	Code    http2.ErrCode
}

// Dial opens a connection to addr: client preface, empty SETTINGS, and a
// read loop. It returns once the server's SETTINGS have arrived.
func Dial(ctx context.Context, addr string, opts ...Option) (*Conn, error) {
	c := &Conn{nextID: 1, ends: map[uint32]End{}, settled: make(chan struct{}), done: make(chan struct{})}
	for _, o := range opts {
		o(&c.cfg)
	}
	c.cfg.authority = addr
	d := net.Dialer{}
	if c.cfg.localIP != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(c.cfg.localIP)}
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	c.fr = http2.NewFramer(conn, conn)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = 1 << 20
	c.henc = hpack.NewEncoder(&c.hbuf)
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		conn.Close()
		return nil, err
	}
	if err := c.fr.WriteSettings(c.cfg.settings...); err != nil {
		conn.Close()
		return nil, err
	}
	go c.readLoop()
	select {
	case <-c.settled:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("h2client: connection to %s closed before the server's SETTINGS: %w", addr, c.readErr)
	case <-ctx.Done():
		conn.Close()
		return nil, ctx.Err()
	}
}

func (c *Conn) readLoop() {
	defer close(c.done)
	settled := false
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.readErr = err
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			if v, ok := f.Value(http2.SettingMaxConcurrentStreams); ok {
				c.mu.Lock()
				c.peerMax = v
				c.mu.Unlock()
			}
			c.write(func() error { return c.fr.WriteSettingsAck() })
			if !settled {
				settled = true
				close(c.settled)
			}
		case *http2.PingFrame:
			if f.IsAck() {
				c.pingsAckd.Add(1)
				continue
			}
			c.write(func() error { return c.fr.WritePing(true, f.Data) })
		case *http2.MetaHeadersFrame:
			if !f.StreamEnded() {
				continue // response headers; the trailers end the stream
			}
			e := End{Status: -1}
			for _, h := range f.Fields {
				switch h.Name {
				case "grpc-status":
					if n, err := strconv.Atoi(h.Value); err == nil {
						e.Status = n
					}
				case "grpc-message":
					e.Message = h.Value
				}
			}
			c.end(f.StreamID, e)
		case *http2.DataFrame:
			c.dataBytes.Add(int64(len(f.Data())))
			if f.StreamEnded() {
				c.end(f.StreamID, End{Status: -1})
			}
		case *http2.RSTStreamFrame:
			c.end(f.StreamID, End{Status: -1, Reset: true, Code: f.ErrCode})
		case *http2.GoAwayFrame:
			c.mu.Lock()
			c.goAway = f
			c.mu.Unlock()
		}
	}
}

// end records the first end of a stream (trailers may be followed by a
// RST_STREAM NO_ERROR, which does not replace them).
func (c *Conn) end(id uint32, e End) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.ends[id]; !ok {
		c.ends[id] = e
	}
}

func (c *Conn) write(f func() error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return f()
}

// OpenStream sends the HEADERS of a gRPC call of method (e.g.
// "/acme.greeter.v1.GreeterService/SayHelloStream") without ending the
// stream, and returns its id. It sends no message: that is up to the
// caller (WriteData), or never.
func (c *Conn) OpenStream(method string) (uint32, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	id := c.nextID
	c.nextID += 2
	c.hbuf.Reset()
	for _, h := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", method}, {":authority", c.cfg.authority},
		{"content-type", "application/grpc"}, {"te", "trailers"},
	} {
		if err := c.henc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]}); err != nil {
			return 0, err
		}
	}
	return id, c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true})
}

// WriteData sends data on stream id, ending the stream if end is set.
func (c *Conn) WriteData(id uint32, end bool, data []byte) error {
	return c.write(func() error { return c.fr.WriteData(id, end, data) })
}

// Reset sends RST_STREAM CANCEL for stream id.
func (c *Conn) Reset(id uint32) error {
	return c.write(func() error { return c.fr.WriteRSTStream(id, http2.ErrCodeCancel) })
}

// Ping sends a PING.
func (c *Conn) Ping() error {
	return c.write(func() error { return c.fr.WritePing(false, [8]byte{1}) })
}

// Settings sends a SETTINGS frame (the server must acknowledge each).
func (c *Conn) Settings() error {
	return c.write(func() error { return c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535}) })
}

// Message is a gRPC length-prefixed message: no compression, body as given.
func Message(body []byte) []byte {
	b := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)))
	return append(b, body...)
}

// Ends is how the server ended each stream so far, by stream id.
func (c *Conn) Ends() map[uint32]End {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[uint32]End, len(c.ends))
	for k, v := range c.ends {
		out[k] = v
	}
	return out
}

// Ended is how many streams the server has ended.
func (c *Conn) Ended() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ends)
}

// MaxConcurrentStreams is the server's SETTINGS_MAX_CONCURRENT_STREAMS
// (0 if it sent none).
func (c *Conn) MaxConcurrentStreams() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peerMax
}

// GoAway is the server's GOAWAY, or nil.
func (c *Conn) GoAway() *http2.GoAwayFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.goAway
}

// PingsAcked is how many of this client's PINGs the server acknowledged.
func (c *Conn) PingsAcked() int64 { return c.pingsAckd.Load() }

// Done is closed when the connection has ended (the server closed it, or
// Close).
func (c *Conn) Done() <-chan struct{} { return c.done }

// Closed reports whether the connection has ended.
func (c *Conn) Closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// WaitClosed waits at most d for the server to close the connection.
func (c *Conn) WaitClosed(d time.Duration) error {
	select {
	case <-c.done:
		return nil
	case <-time.After(d):
		return errors.New("h2client: connection still open")
	}
}

// Close closes the connection and waits for the read loop.
func (c *Conn) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}
