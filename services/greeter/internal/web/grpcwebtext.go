package web

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"

	"connectrpc.com/connect"
)

// gRPC-Web text (application/grpc-web-text) is gRPC-Web with its body
// base64-encoded, for browsers that cannot read binary streams. connect-go
// speaks only the binary form, so the text form is translated here: the
// request decoded before the handler reads it, the response encoded as the
// handler writes it, each flush padded on its own as grpc-web's
// own proxies do (clients decode such a body four characters at a time).
//
// Only calls that send one message come as text (browsers cannot stream a
// request body), so the request is decoded whole, within its body limit.

// decodeGRPCWebText turns r into the binary gRPC-Web request it encodes.
func decodeGRPCWebText(r *http.Request) (*http.Request, *connect.Error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("read gRPC-Web text body: %w", err))
	}
	decoded := make([]byte, 0, base64.StdEncoding.DecodedLen(len(body)))
	// Concatenated padded chunks: decode each quantum of four on its own.
	body = bytes.Join(bytes.Fields(body), nil)
	if len(body)%4 != 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("gRPC-Web text body of %d characters: base64 comes in groups of 4", len(body)))
	}
	var quantum [3]byte
	for i := 0; i < len(body); i += 4 {
		n, err := base64.StdEncoding.Decode(quantum[:], body[i:i+4])
		if err != nil {
			return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("gRPC-Web text body is not base64: %w", err))
		}
		decoded = append(decoded, quantum[:n]...)
	}
	r = r.Clone(r.Context())
	ct := r.Header.Get("Content-Type")
	r.Header.Set("Content-Type", "application/grpc-web+"+textCodec(ct))
	r.Header.Del("Content-Length")
	r.ContentLength = int64(len(decoded))
	r.Body = io.NopCloser(bytes.NewReader(decoded))
	return r, nil
}

// textCodec is the codec of a gRPC-Web text content type: proto unless it
// says.
func textCodec(contentType string) string {
	if _, codec, ok := strings.Cut(contentType, "+"); ok {
		if i := strings.IndexByte(codec, ';'); i >= 0 {
			codec = codec[:i]
		}
		return strings.TrimSpace(codec)
	}
	return "proto"
}

// textWriter base64-encodes a binary gRPC-Web response.
type textWriter struct {
	http.ResponseWriter
	enc         io.WriteCloser
	wroteHeader bool
}

func newTextWriter(w http.ResponseWriter) *textWriter {
	return &textWriter{ResponseWriter: w}
}

func (w *textWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	h := w.Header()
	if ct := h.Get("Content-Type"); strings.HasPrefix(ct, "application/grpc-web") {
		h.Set("Content-Type", "application/grpc-web-text+"+textCodec(ct))
	}
	h.Del("Content-Length")
	w.ResponseWriter.WriteHeader(code)
}

func (w *textWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.enc == nil {
		w.enc = base64.NewEncoder(base64.StdEncoding, w.ResponseWriter)
	}
	return w.enc.Write(p)
}

// Flush ends the current chunk, padded, and sends it.
func (w *textWriter) Flush() {
	w.close()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *textWriter) close() {
	if w.enc != nil {
		_ = w.enc.Close()
		w.enc = nil
	}
}

func (w *textWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
