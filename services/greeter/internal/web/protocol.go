package web

import (
	"net/http"
	"strings"
)

// The protocol label of greeter_http_requests_total.
const (
	protocolConnect     = "connect"       // POST: unary, or streaming (application/connect+...)
	protocolConnectGet  = "connect-get"   // GET of a NO_SIDE_EFFECTS method
	protocolGRPCWeb     = "grpc-web"      // binary
	protocolGRPCWebText = "grpc-web-text" // base64
	protocolGRPC        = "grpc"
	protocolPreflight   = "preflight" // CORS OPTIONS
	protocolUnknown     = "unknown"
)

// The codec label of greeter_http_requests_total.
const (
	codecProto   = "proto"
	codecJSON    = "json"
	codecUnknown = "unknown"
)

// request is what the content type and method say of a request.
type request struct {
	protocol string
	codec    string
	// connectUnary is a Connect unary POST: to it, a path where nothing
	// is served is HTTP's 404.
	connectUnary bool
}

// classify reads a request's protocol and codec as the Connect, gRPC-Web and
// gRPC specifications name them in its method and Content-Type.
func classify(r *http.Request) request {
	switch r.Method {
	case http.MethodOptions:
		return request{protocol: protocolPreflight, codec: codecUnknown}
	case http.MethodGet:
		return request{protocol: protocolConnectGet, codec: codecName(r.URL.Query().Get("encoding"))}
	case http.MethodPost:
	default:
		return request{protocol: protocolUnknown, codec: codecUnknown}
	}
	ct := r.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.ToLower(strings.TrimSpace(ct))
	for _, p := range []struct {
		prefix   string
		protocol string
	}{
		// Longest first: application/grpc-web-text is also application/grpc-web.
		{"application/grpc-web-text", protocolGRPCWebText},
		{"application/grpc-web", protocolGRPCWeb},
		{"application/grpc", protocolGRPC},
		{"application/connect", protocolConnect},
	} {
		if rest, ok := strings.CutPrefix(ct, p.prefix); ok {
			switch {
			case rest == "" && p.protocol != protocolConnect:
				return request{protocol: p.protocol, codec: codecProto}
			case strings.HasPrefix(rest, "+"):
				return request{protocol: p.protocol, codec: codecName(rest[1:])}
			}
			return request{protocol: protocolUnknown, codec: codecUnknown}
		}
	}
	switch ct {
	case "application/json":
		return request{protocol: protocolConnect, codec: codecJSON, connectUnary: true}
	case "application/proto":
		return request{protocol: protocolConnect, codec: codecProto, connectUnary: true}
	}
	return request{protocol: protocolUnknown, codec: codecUnknown}
}

func codecName(name string) string {
	switch name {
	case "proto":
		return codecProto
	case "json":
		return codecJSON
	}
	return codecUnknown
}
