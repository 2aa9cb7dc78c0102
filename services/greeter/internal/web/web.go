// Package web serves gRPC services to browsers and plain HTTP callers: the
// Connect protocol (JSON and binary; every kind of call over HTTP/1.1 and
// HTTP/2, bidi over HTTP/1.1 half duplex; GET for methods marked
// NO_SIDE_EFFECTS), gRPC-Web (binary and text) and gRPC, on
// one HTTP port (HTTP/1.1, and HTTP/2 as h2c or over TLS).
//
// Every method is a connect-go handler (connectrpc.com/connect, which
// speaks all three protocols) that calls the service's generated gRPC
// handler as grpc-go does, with the gRPC port's own interceptor chain
// (Config.Unary, Config.Stream: recovery, admission, metrics, access log,
// rate limit, validation with its google.rpc.BadRequest details), its codec
// (Config.Codec) and its stats handlers (Config.StatsHandlers: tracing), on a grpc.ServerStream over the connect-go stream: the request's
// headers are its incoming metadata, grpc.SetHeader and SetTrailer set the
// response's, the client's deadline is the context's. A request message
// stays undecoded until the handler asks for it, so that it is decoded into
// the handler's own type, within the interceptors. Serving the contract
// with connect-go's generated handlers would have meant writing every
// interceptor again as connect interceptors; transcoding into a
// grpc.Server's ServeHTTP (vanguard-go, the first design) paid for a second
// transport per call (docs/performance.md, "HTTP port"); grpc-gateway
// speaks neither Connect nor gRPC-Web.
//
// The package has no settings of its own: package server decides every one
// (Config), from the same options as the gRPC port's, so that a limit both
// ports enforce is one value. What the gRPC port's transport does, this
// package does in front of the handlers:
//
//   - admission (grpc.InTapHandle): Config.Admission, asked for every call
//     before any of its body is read, and told when the call ends;
//   - connection caps: Config.Listener wraps the listener, as the gRPC
//     port's;
//   - the transport's own settings (header timeout, idle timeout, HTTP/2
//     streams and windows): Config.Transport, set by package server;
//   - the first message and flow control: Config.FirstMessageTimeout (a
//     body that does not arrive) and Config.SendStallTimeout (a client that
//     reads nothing);
//   - max message size: a request body larger than Config.MaxMessageSize
//     is refused from its Content-Length before it is read, or as soon as
//     that many bytes have arrived.
//
// CORS (Config.AllowedOrigins) follows connectrpc.com/cors's header lists.
// Requests refused here, before they reach a handler, are counted in
// greeter_http_refused_total by reason and logged; every request is counted
// in greeter_http_requests_total by protocol, and its access line names the
// protocol.
package web

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/stats"
)

// PreflightMaxAge is how long browsers may cache a CORS preflight's answer:
// two hours, the most Chromium honours. A fact of browsers, not a setting.
const PreflightMaxAge = 2 * time.Hour

// Config is what a Server serves and every limit it enforces, all decided
// by package server from its options: the defaults and the checks of each
// setting live there, once for both ports. Each field says what its zero
// value means; those that say "required" have none.
type Config struct {
	// Services are served on every protocol.
	Services []Service
	// Codec decodes binary (proto) request messages: the gRPC port's
	// (grpc.ForceServerCodecV2), so that both decode alike. Required.
	// JSON is decoded with protojson, unknown fields refused.
	Codec encoding.CodecV2
	// Unary and Stream are the gRPC port's interceptor chain, each as one
	// interceptor; nil runs none.
	Unary  grpc.UnaryServerInterceptor
	Stream grpc.StreamServerInterceptor
	// StatsHandlers are told of every call as grpc.StatsHandler's are:
	// tagged, begun, its headers, its messages, its end.
	StatsHandlers []stats.Handler
	// Admission is asked for every call before its body is read; nil
	// admits every call.
	Admission Admission
	// Listener wraps every listener Serve is given (the connection caps);
	// nil serves the listener as it is.
	Listener func(net.Listener) net.Listener
	// TLS serves TLS (and mutual TLS, as it says), offering HTTP/2 and
	// HTTP/1.1; nil serves plaintext, HTTP/1.1 and HTTP/2 without TLS
	// (h2c).
	TLS *tls.Config
	// Transport holds the transport's settings (ReadHeaderTimeout,
	// IdleTimeout, MaxHeaderBytes, HTTP2); New takes it over and sets its
	// handler, protocols, contexts, TLS and error log. Required.
	Transport *http.Server
	// MaxMessageSize is the largest request message, in bytes, JSON
	// included: a unary or server-streaming call's body larger than this
	// is refused (RESOURCE_EXHAUSTED) before it is read whole, as is any
	// message of a client stream. Required.
	MaxMessageSize int
	// Workers is how many goroutines are kept to run HTTP/2 calls (see
	// workers); 0 keeps none.
	Workers int
	// FirstMessageTimeout is how long the body of a call that sends one
	// request message (unary, server streaming) may take to arrive, from
	// the call's start; a client stream's first message is watched by the
	// admission. 0 never times out.
	FirstMessageTimeout time.Duration
	// SendStallTimeout is how long one write may wait for a client that
	// reads nothing: a call's write to its stream before the call is cut
	// off, a write to the connection before the connection is closed,
	// with every call on it; 0 never.
	SendStallTimeout time.Duration
	// AllowedOrigins are the origins ("https://app.example.com", "*" for
	// any) whose pages may call the server from a browser (CORS); a
	// request with an Origin outside the list is refused with
	// PERMISSION_DENIED. None sends no CORS headers and refuses nothing:
	// a page served from the same origin as the API needs none.
	AllowedOrigins []string
	// ExposedHeaders are response headers a browser page may read beside
	// those the protocols need (Grpc-Status and the like).
	ExposedHeaders []string
	// Names name the settings behind refusals in their answers, as the
	// operator sets them; empty names are left out.
	Names SettingNames
	// Logger logs refused requests and net/http's own complaints.
	// Required.
	Logger *slog.Logger
	// Registerer is where the HTTP metrics are registered; nil registers
	// them in a registry of their own, which nothing exports.
	Registerer prometheus.Registerer
}

// SettingNames are the names an operator knows the settings by that
// refuse calls ("--max-recv-msg-size"): the answer to a refused call
// points to the one to change.
type SettingNames struct {
	MaxMessageSize      string
	AllowedOrigins      string
	FirstMessageTimeout string
}

// hint is " (name)" for a setting's name, or nothing.
func hint(name string) string {
	if name == "" {
		return ""
	}
	return " (" + name + ")"
}
