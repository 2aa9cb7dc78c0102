package web

import (
	"net/http"
	"strings"
	"sync"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/acme/greeter/services/greeter/internal/readmostly"
)

// transportStream is a call's grpc.ServerTransportStream: grpc.SetHeader,
// SendHeader and SetTrailer collect metadata for the response.
type transportStream struct {
	method  string
	mu      sync.Mutex
	header  metadata.MD
	trailer metadata.MD
	// sentHeader: the headers went out with the first message; later
	// ones are an error, as on grpc-go.
	sentHeader bool
}

func (t *transportStream) Method() string { return t.method }

func (t *transportStream) SetHeader(md metadata.MD) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sentHeader {
		return status.Error(codes.Internal, "transport: SetHeader called after the headers were sent")
	}
	t.header = metadata.Join(t.header, md)
	return nil
}

func (t *transportStream) SendHeader(md metadata.MD) error { return t.SetHeader(md) }

func (t *transportStream) SetTrailer(md metadata.MD) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.trailer = metadata.Join(t.trailer, md)
	return nil
}

func (t *transportStream) trailerMD() metadata.MD {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.trailer
}

// copyTo adds the headers not sent yet to header, and the trailers to
// trailer.
func (t *transportStream) copyTo(header, trailer http.Header) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.sentHeader {
		t.sentHeader = true
		addMetadata(header, t.header)
	}
	addMetadata(trailer, t.trailer)
}

// flushHeader adds the headers to header, once, as the first message goes
// out.
func (t *transportStream) flushHeader(header http.Header) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sentHeader {
		return
	}
	t.sentHeader = true
	addMetadata(header, t.header)
}

func addMetadata(h http.Header, md metadata.MD) {
	for k, vs := range md {
		for _, v := range vs {
			if strings.HasSuffix(k, "-bin") {
				v = connect.EncodeBinaryHeader([]byte(v))
			}
			h.Add(k, v)
		}
	}
}

// incomingMetadata is a request's headers as grpc-go's transports give
// them to a handler: lower-case keys, binary values decoded, without the
// headers of the protocols themselves.
func incomingMetadata(h http.Header) metadata.MD {
	md := make(metadata.MD, len(h))
	for k, vs := range h {
		k = lowerName(k)
		if reservedHeader(k) {
			continue
		}
		if _, seen := md[k]; !seen && !strings.HasSuffix(k, "-bin") {
			// The header's own values: grpc-go hands interceptors a
			// copy of the incoming metadata (FromIncomingContext).
			md[k] = vs
			continue
		}
		for _, v := range vs {
			if strings.HasSuffix(k, "-bin") {
				b, err := connect.DecodeBinaryHeader(v)
				if err != nil {
					continue
				}
				v = string(b)
			}
			md[k] = append(md[k], v)
		}
	}
	return md
}

// lowerNames are header names in lower case by their canonical form, up to
// maxLowerNames of them: the same few names come with every call, and
// lowering each anew allocated.
var lowerNames readmostly.Map[string, string]

const maxLowerNames = 256

func lowerName(k string) string {
	if l, ok := lowerNames.Load(k); ok {
		return l
	}
	l := strings.ToLower(k)
	if lowerNames.Len() < maxLowerNames {
		lowerNames.LoadOrMake(k, func() string { return l })
	}
	return l
}

func reservedHeader(k string) bool {
	switch k {
	case "content-type", "content-length", "content-encoding", "accept-encoding", "te", "connection", "trailer":
		return true
	}
	return strings.HasPrefix(k, "grpc-") || strings.HasPrefix(k, "connect-")
}
