package web

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"connectrpc.com/connect"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/acme/greeter/services/greeter/internal/interceptors"
)

// serveCall checks a call's protocol, size and admission, then hands it to
// its method's handler.
func (s *Server) serveCall(w http.ResponseWriter, r *http.Request, req request) {
	m, known := s.methods[r.URL.Path]
	if !known {
		s.unknownMethod(w, r, req)
		return
	}
	switch {
	case req.protocol == protocolPreflight:
		s.refuse(w, r, req, reasonOrigin, connect.NewError(connect.CodePermissionDenied, fmt.Errorf(
			"CORS preflight from origin %q: the server allows no cross-origin calls; list the origin in its allowed origins%s", r.Header.Get("Origin"), hint(s.cfg.Names.AllowedOrigins))))
		return
	case r.Method != http.MethodPost && r.Method != http.MethodGet:
		// connect-go answers it before any of its body is read: 405 Method
		// Not Allowed, with the Allow header naming the method's verbs.
		s.noteRefusal(r, req, reasonProtocol, connect.NewError(connect.CodeUnknown, fmt.Errorf("HTTP method %s not allowed", r.Method)))
		m.handler.ServeHTTP(w, r)
		return
	case req.protocol == protocolUnknown:
		s.refuse(w, r, req, reasonProtocol, connect.NewError(connect.CodeUnknown, fmt.Errorf(
			"%s %s with Content-Type %q: call with POST and application/json or application/proto (Connect; with the header Connect-Protocol-Version: 1), "+
				"application/connect+json or +proto (Connect streaming), application/grpc-web[-text][+proto] (gRPC-Web) or application/grpc (gRPC); "+
				"or GET with ?connect=v1&encoding=json&message=... (Connect GET of a side-effect-free method)",
			r.Method, r.URL.Path, r.Header.Get("Content-Type"))))
		return
	case req.codec == codecUnknown && req.protocol == protocolConnectGet:
		s.refuse(w, r, req, reasonProtocol, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(
			"encoding=%q: a Connect GET names its codec in the query, encoding=json or encoding=proto", r.URL.Query().Get("encoding"))))
		return
	case req.codec == codecUnknown:
		s.refuse(w, r, req, reasonProtocol, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(
			"codec of %q not served: use proto or json", r.Header.Get("Content-Type"))))
		return
	}
	limit := s.bodyLimit(req)
	if !m.clientStreams && r.ContentLength > limit {
		s.refuse(w, r, req, reasonTooLarge, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf(
			"request body of %d bytes is larger than the server's largest message, %d bytes%s", r.ContentLength, s.cfg.MaxMessageSize, hint(s.cfg.Names.MaxMessageSize))))
		return
	}
	client := s.peerOf(r)
	ctx := interceptors.WithProtocol(r.Context(), req.protocol)
	if s.cfg.Admission != nil {
		admitted, release, err := s.cfg.Admission.Admit(ctx, client, r.URL.Path)
		if err != nil {
			s.refuse(w, r, req, reasonAdmission, connectError(err))
			return
		}
		defer release()
		ctx = admitted
	} else {
		ctx = peer.NewContext(ctx, client)
	}
	// A copy: net/http looks at its own request's Body once the handler
	// returns, to close an HTTP/1 connection whose body was not read whole.
	r = r.WithContext(ctx)
	switch {
	case !m.clientStreams:
		// A message larger than the limit is refused by connect-go as soon
		// as it has that much; this bounds the whole body too.
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		if t := s.cfg.FirstMessageTimeout; t > 0 && r.Method == http.MethodPost {
			body := newTimedBody(r.Body, w, t, s.cfg.Names.FirstMessageTimeout)
			defer body.stop()
			r.Body = body
		}
	case s.cfg.Admission != nil:
		body := newStreamBody(ctx, r.Body, w)
		defer body.stop()
		r.Body = body
	}
	if s.cfg.SendStallTimeout > 0 {
		sw := &stallWriter{ResponseWriter: w, timeout: s.cfg.SendStallTimeout, watch: s.watch, h2: r.ProtoMajor == 2}
		defer sw.end()
		w = sw
	}
	if req.protocol == protocolGRPCWebText {
		decoded, cerr := decodeGRPCWebText(r)
		if cerr != nil {
			s.refuse(w, r, req, reasonProtocol, cerr)
			return
		}
		r = decoded
		tw := newTextWriter(w)
		defer tw.close()
		w = tw
	}
	if m.bidi && r.ProtoMajor == 1 {
		r = bidiOverHTTP1(r, http.NewResponseController(w))
	}
	m.handler.ServeHTTP(w, r)
}

// bidiOverHTTP1 is r, a bidi call over HTTP/1.1, as connect-go serves it.
// connect-go refuses every bidi call over HTTP/1.1 (505), for clients that
// expect full duplex there; Connect and gRPC-Web allow a half-duplex one
// (every request, then every response), which HTTP/1.1 carries. ProtoMajor
// is all connect-go reads it for, so the call is handed over as HTTP/2; and
// the body stays readable once the response has started (net/http would
// discard the rest of it), for handlers that answer each request as it
// comes.
func bidiOverHTTP1(r *http.Request, rc *http.ResponseController) *http.Request {
	_ = rc.EnableFullDuplex()
	h2 := *r
	h2.ProtoMajor, h2.ProtoMinor = 2, 0
	return &h2
}

// bodyLimit is the largest body of a call that sends one message: the
// message, its envelope, and for gRPC-Web text the base64 encoding.
func (s *Server) bodyLimit(req request) int64 {
	n := int64(s.cfg.MaxMessageSize) + 5
	if req.protocol == protocolGRPCWebText {
		n = (n + 2) / 3 * 4
	}
	return n
}

func (s *Server) unknownMethod(w http.ResponseWriter, r *http.Request, req request) {
	if req.connectUnary || req.protocol == protocolConnectGet {
		// To a Connect unary call, a path where nothing is served is HTTP's
		// 404, as a router answers it; connect-go's error writer would give
		// the code its status for an RPC, 501. Clients read 404 as
		// unimplemented. (A streaming call's error is in its body, after
		// 200.)
		w = notFound{w}
	}
	s.refuse(w, r, req, reasonUnknownMethod, connect.NewError(connect.CodeUnimplemented, fmt.Errorf(
		"no method %s %s here: the path is /<package>.<Service>/<Method> of one of %s", r.Method, r.URL.Path, s.served)))
}

// The reason label of greeter_http_refused_total.
const (
	reasonOrigin        = "origin"
	reasonMalformed     = "malformed"
	reasonProtocol      = "protocol"
	reasonTooLarge      = "too-large"
	reasonAdmission     = "admission"
	reasonUnknownMethod = "unknown-method"
)

// refuse answers a request the gRPC server never sees: in its protocol's
// error format where it has one, else as plain text with the HTTP status
// the Connect protocol gives the code.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, req request, reason string, err *connect.Error) {
	s.noteRefusal(r, req, reason, err)
	if req.protocol == protocolGRPCWebText {
		// connect-go's ErrorWriter does not know the text form: a
		// trailers-only response, as grpc-go sends.
		h := w.Header()
		h.Set("Content-Type", "application/grpc-web-text+proto")
		h.Set("Grpc-Status", strconv.Itoa(int(err.Code())))
		h.Set("Grpc-Message", url.PathEscape(err.Message()))
		w.WriteHeader(http.StatusOK)
		return
	}
	if req.protocol != protocolUnknown && req.codec != codecUnknown && s.errors.IsSupported(r) {
		if s.errors.Write(w, r, err) == nil {
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(httpStatus(err.Code()))
	io.WriteString(w, err.Message()+"\n")
}

// noteRefusal counts and logs a request refused for reason with err.
func (s *Server) noteRefusal(r *http.Request, req request, reason string, err *connect.Error) {
	s.metrics.refused.WithLabelValues(reason).Inc()
	s.cfg.Logger.InfoContext(r.Context(), "HTTP request refused", "reason", reason, "protocol", req.protocol,
		"method", r.Method, "path", r.URL.Path, "peer", r.RemoteAddr, "origin", r.Header.Get("Origin"),
		"code", err.Code().String(), "error", err.Message())
}

// notFound is a ResponseWriter that answers 404 Not Found whatever status
// it is given.
type notFound struct{ http.ResponseWriter }

func (w notFound) WriteHeader(int)             { w.ResponseWriter.WriteHeader(http.StatusNotFound) }
func (w notFound) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// peerOf is the client of r as the gRPC port shows its clients to the
// interceptors: the connection's remote address (the admission listener's,
// which knows its connection and formats itself once), and the TLS state.
// Without TLS it is the connection's, made once.
func (s *Server) peerOf(r *http.Request) *peer.Peer {
	conn, ok := r.Context().Value(connKey{}).(*connPeer)
	if !ok {
		conn = &connPeer{peer: peer.Peer{Addr: stringAddr(r.RemoteAddr)}}
	}
	if r.TLS == nil {
		return &conn.peer
	}
	return &peer.Peer{
		Addr:     conn.peer.Addr,
		AuthInfo: credentials.TLSInfo{State: *r.TLS, CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}},
	}
}

// connKey is the context key of a connection's connPeer
// (http.Server.ConnContext).
type connKey struct{}

// connPeer is a connection's client, without its TLS state.
type connPeer struct{ peer peer.Peer }

type stringAddr string

func (a stringAddr) Network() string { return "tcp" }
func (a stringAddr) String() string  { return string(a) }
