package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"
)

// h2cClient speaks HTTP/2 without TLS to the harness's listener, so a test
// can write gRPC framing by hand.
func h2cClient(h *harness) *http.Client {
	return &http.Client{Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
			return h.lis.DialContext(ctx)
		},
	}}
}

// grpcFrame is a gRPC length-prefixed message: flag, 4-byte length, body.
func grpcFrame(compressed byte, length uint32, body []byte) []byte {
	b := []byte{compressed, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], length)
	return append(b, body...)
}

// TestTruncatedFrames writes gRPC frames by hand over HTTP/2: a length
// prefix promising more bytes than the stream carries, a prefix cut short,
// and a compressed flag with no encoding. The server must answer each with
// a status (never hang, never crash) and keep serving.
//
// These are framing errors, below the codec: grpc-go itself answers them
// INTERNAL ("grpc: ... unexpected EOF", "cardinality violation", "compressed
// flag set with identity or empty encoding") before any interceptor runs,
// and the gRPC protocol spec leaves them to the implementation. The test
// pins that behaviour; only a message that exceeds --max-recv-msg-size is
// RESOURCE_EXHAUSTED.
func TestTruncatedFrames(t *testing.T) {
	h := start(t)
	client := h2cClient(h)
	body := wire(nil).str(1, "Ada")
	tests := []struct {
		desc string
		data []byte
		code codes.Code
	}{
		{"well formed", grpcFrame(0, uint32(len(body)), body), codes.OK},
		{"length prefix longer than the body", grpcFrame(0, 100, body), codes.Internal},
		{"length prefix cut short", []byte{0, 0, 0}, codes.Internal},
		{"no message at all", nil, codes.Internal},
		{"compressed flag, no grpc-encoding", grpcFrame(1, uint32(len(body)), body), codes.Internal},
		{"length 4 GiB-1", grpcFrame(0, math.MaxUint32, body), codes.ResourceExhausted},
		{"two messages to a unary RPC", append(grpcFrame(0, uint32(len(body)), body), grpcFrame(0, uint32(len(body)), body)...), codes.Internal},
	}
	for _, tt := range tests {
		for _, method := range []string{"/acme.greeter.v1.GreeterService/SayHello", "/helloworld.Greeter/SayHello"} {
			t.Run(tt.desc+method, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://bufnet"+method, bytes.NewReader(tt.data))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/grpc")
				req.Header.Set("TE", "trailers")
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				gs := resp.Trailer.Get("Grpc-Status")
				if gs == "" {
					gs = resp.Header.Get("Grpc-Status") // trailers-only response
				}
				msg := resp.Trailer.Get("Grpc-Message") + resp.Header.Get("Grpc-Message")
				if want := strconvCode(tt.code); gs != want {
					t.Fatalf("grpc-status %q (%s), want %s (%v)", gs, msg, want, tt.code)
				}
				t.Logf("grpc-status %s: %s", gs, msg)
				stillServing(t, h)
			})
		}
	}
}

func strconvCode(c codes.Code) string { return strconv.Itoa(int(c)) }
