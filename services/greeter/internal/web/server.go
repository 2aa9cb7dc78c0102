package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	connectcors "connectrpc.com/cors"
	"connectrpc.com/vanguard"
	"github.com/rs/cors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Admission decides whether a call may start, before any of its body is
// read: what grpc.InTapHandle does on the gRPC port, and grpc-go's ServeHTTP
// path never calls.
type Admission interface {
	// Admit charges the call of method ("/acme.greeter.v1.GreeterService/
	// SayHello") from client, whose address and TLS state are as grpc-go
	// will show them to the interceptors. It returns the context the call
	// must run in and release, which ends the charge once the call is over
	// and may be called after the server has released it; or the gRPC
	// status error that refuses the call.
	Admit(ctx context.Context, client *peer.Peer, method string) (admitted context.Context, release func(), err error)
}

// Server serves a grpc.Server's services over HTTP; see the package doc.
type Server struct {
	opts       options
	transcoder http.Handler
	handler    http.Handler // the transcoder behind CORS and the checks
	methods    map[string]methodInfo
	served     string // the services, for the message of an unknown method
	errors     *connect.ErrorWriter
	metrics    *httpMetrics
	http       *http.Server
	cutoff     context.Context // done once Shutdown cuts the calls off
	cut        context.CancelFunc
}

type methodInfo struct {
	clientStreams bool
}

// cutGrace is how long calls get to end once Shutdown has cancelled them,
// before their connections are closed.
const cutGrace = time.Second

// New returns a Server of g's services; g must have them all registered.
func New(g *grpc.Server, opts ...Option) (*Server, error) {
	o := defaultOptions()
	var errs []error
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	services, err := o.servedServices(g)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("build HTTP server: %w", err)
	}
	m, err := newHTTPMetrics(o.registerer)
	if err != nil {
		return nil, fmt.Errorf("build HTTP server: %w", err)
	}
	s := &Server{opts: o, methods: map[string]methodInfo{}, errors: connect.NewErrorWriter(), metrics: m}
	s.cutoff, s.cut = context.WithCancel(context.Background())
	slices.Sort(services)
	s.served = strings.Join(services, ", ")
	info := g.GetServiceInfo()
	vservices := make([]*vanguard.Service, 0, len(services))
	for _, name := range services {
		for _, m := range info[name].Methods {
			s.methods["/"+name+"/"+m.Name] = methodInfo{clientStreams: m.IsClientStream}
		}
		vservices = append(vservices, vanguard.NewService(name, statusGuard{g: g, cutoff: s.cutoff},
			// Only binary proto reaches g: its codec is forced (package
			// validate), whatever the content subtype says.
			vanguard.WithTargetCodecs(vanguard.CodecProto),
			vanguard.WithTargetProtocols(vanguard.ProtocolGRPC),
			// g has no decompressors but gzip's; vanguard decompresses.
			vanguard.WithNoTargetCompression(),
			vanguard.WithMaxMessageBufferBytes(uint32(o.maxMessageSize)),
		))
	}
	transcoder, err := vanguard.NewTranscoder(vservices,
		vanguard.WithUnknownHandler(http.HandlerFunc(s.unknownMethod)),
		vanguard.WithCodec(newRequestJSON(m.refused.WithLabelValues(reasonMalformed))))
	if err != nil {
		return nil, fmt.Errorf("build HTTP server: %w", err)
	}
	s.transcoder = transcoder
	s.handler = http.HandlerFunc(s.serveCall)
	if len(o.origins) > 0 {
		s.handler = cors.New(cors.Options{
			AllowedOrigins: o.origins,
			AllowedMethods: connectcors.AllowedMethods(),
			// traceparent and tracestate: a browser's trace joins the server's.
			AllowedHeaders: append(connectcors.AllowedHeaders(), "Traceparent", "Tracestate"),
			ExposedHeaders: append(connectcors.ExposedHeaders(), o.exposedHeaders...),
			MaxAge:         int(PreflightMaxAge.Seconds()),
		}).Handler(s.handler)
	}

	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	if o.tlsConfig != nil {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	s.http = &http.Server{
		Handler:           s,
		Protocols:         protocols,
		ReadHeaderTimeout: o.readHeaderTimeout,
		IdleTimeout:       o.idleTimeout,
		// A Connect GET carries its message in the URL.
		MaxHeaderBytes: 16<<10 + 2*o.maxMessageSize,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: int(o.maxStreams),
			// A connection that takes no bytes for this long is closed,
			// which ends every call on it.
			WriteByteTimeout: o.sendStallTimeout,
		},
		// net/http's own complaints (a failed TLS handshake, a panic
		// outside the gRPC server's recovery) go to the server's log.
		ErrorLog: slog.NewLogLogger(o.logger.Handler(), slog.LevelWarn),
	}
	if o.tlsConfig != nil {
		s.http.TLSConfig = withALPN(o.tlsConfig)
	}
	return s, nil
}

// withALPN offers HTTP/2 and HTTP/1.1 on cfg, including on the
// configuration its GetConfigForClient returns (a reloading certificate's).
func withALPN(cfg *tls.Config) *tls.Config {
	protos := []string{"h2", "http/1.1"}
	cfg = cfg.Clone()
	cfg.NextProtos = protos
	if get := cfg.GetConfigForClient; get != nil {
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := get(hello)
			if err != nil || c == nil {
				return c, err
			}
			c = c.Clone()
			c.NextProtos = protos
			return c, nil
		}
	}
	return cfg
}

// Serve accepts connections on lis until Shutdown; it returns nil after a
// shutdown.
func (s *Server) Serve(lis net.Listener) error {
	if s.opts.listener != nil {
		lis = s.opts.listener(lis)
	}
	var err error
	if s.opts.tlsConfig != nil {
		err = s.http.ServeTLS(lis, "", "")
	} else {
		err = s.http.Serve(lis)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serve HTTP on %s: %w", lis.Addr(), err)
}

// Shutdown stops accepting connections and waits for the calls in flight
// to end, HTTP/2 connections told to go away. If ctx ends first, the calls
// still running are cut off (each ends with an UNAVAILABLE status and a
// proper end of its stream), given cutGrace to end, and their connections
// closed; Shutdown then returns ctx's error.
//
// Shut the HTTP port down before the grpc.Server's GracefulStop: that would
// end the calls in flight here without their status.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err == nil {
		return nil
	}
	s.cut()
	grace, cancel := context.WithTimeout(context.Background(), cutGrace)
	defer cancel()
	if s.http.Shutdown(grace) != nil {
		s.http.Close()
	}
	return err
}

// ServeHTTP serves one request: counted by protocol, refused if its origin
// is not allowed, else handed to CORS and the call's checks.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := classify(r)
	rec := &statusRecorder{ResponseWriter: w}
	defer func() { s.metrics.requests.WithLabelValues(req.protocol, req.codec, strconv.Itoa(rec.status())).Inc() }()
	if origin := r.Header.Get("Origin"); origin != "" && len(s.opts.origins) > 0 && !s.originAllowed(origin) {
		s.refuse(rec, r, req, reasonOrigin, connect.NewError(connect.CodePermissionDenied,
			fmt.Errorf("origin %q may not call this server: the server's --cors-allowed-origins does not list it", origin)))
		return
	}
	s.handler.ServeHTTP(rec, r.WithContext(withRequest(r.Context(), req)))
}

func (s *Server) originAllowed(origin string) bool {
	for _, o := range s.opts.origins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// Handler is the Server's handler, for tests that serve it themselves.
func (s *Server) Handler() http.Handler { return s }

type requestKey struct{}

func withRequest(ctx context.Context, req request) context.Context {
	return context.WithValue(ctx, requestKey{}, req)
}

func requestOf(r *http.Request) request {
	req, ok := r.Context().Value(requestKey{}).(request)
	if !ok {
		return classify(r)
	}
	return req
}

// serveCall checks a call's protocol, size and admission, then hands it to
// the transcoder.
func (s *Server) serveCall(w http.ResponseWriter, r *http.Request) {
	req := requestOf(r)
	m, known := s.methods[r.URL.Path]
	if !known {
		s.unknownMethod(w, r)
		return
	}
	switch {
	case req.protocol == protocolPreflight:
		s.refuse(w, r, req, reasonOrigin, connect.NewError(connect.CodePermissionDenied, fmt.Errorf(
			"CORS preflight from origin %q: the server allows no cross-origin calls; list the origin in its --cors-allowed-origins", r.Header.Get("Origin"))))
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
	case req.connectUnary && r.Header.Get("Connect-Protocol-Version") != "1":
		s.refuse(w, r, req, reasonProtocol, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(
			"Connect-Protocol-Version %q: send the header Connect-Protocol-Version: 1 with a Connect unary call", r.Header.Get("Connect-Protocol-Version"))))
		return
	case req.protocol == protocolConnectGet && r.URL.Query().Get("connect") != "v1":
		s.refuse(w, r, req, reasonProtocol, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(
			"connect=%q: a Connect GET names the protocol's version in the query, connect=v1", r.URL.Query().Get("connect"))))
		return
	}
	limit := s.bodyLimit(req)
	if !m.clientStreams && r.ContentLength > limit {
		s.refuse(w, r, req, reasonTooLarge, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf(
			"request body of %d bytes is larger than the server's largest message, %d bytes (--max-recv-msg-size)", r.ContentLength, s.opts.maxMessageSize)))
		return
	}
	ctx := r.Context()
	if s.opts.admission != nil {
		admitted, release, err := s.opts.admission.Admit(ctx, peerOf(r), r.URL.Path)
		if err != nil {
			s.refuse(w, r, req, reasonAdmission, connectError(err))
			return
		}
		defer release()
		ctx = admitted
	}
	rc := http.NewResponseController(w)
	if !m.clientStreams {
		// A message larger than the limit is refused by the transcoder as
		// soon as it has that much; this bounds the whole body too.
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		if t := s.opts.firstMessageTimeout; t > 0 && r.Method == http.MethodPost {
			// Cleared once the body is read: on HTTP/1.1 a read deadline
			// passing during a long response would end the call.
			_ = rc.SetReadDeadline(time.Now().Add(t))
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			defer rc.SetReadDeadline(time.Time{})
		}
	}
	if s.opts.sendStallTimeout > 0 {
		w = &stallWriter{ResponseWriter: w, rc: rc, timeout: s.opts.sendStallTimeout}
		// On HTTP/1.1 the deadline is the connection's: clear it for the
		// next request.
		defer rc.SetWriteDeadline(time.Time{})
	}
	r = r.WithContext(ctx)
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
	s.transcoder.ServeHTTP(w, r)
}

// bodyLimit is the largest body of a call that sends one message: the
// message, its envelope, and for gRPC-Web text the base64 encoding.
func (s *Server) bodyLimit(req request) int64 {
	n := int64(s.opts.maxMessageSize) + 5
	if req.protocol == protocolGRPCWebText {
		n = (n + 2) / 3 * 4
	}
	return n
}

func (s *Server) unknownMethod(w http.ResponseWriter, r *http.Request) {
	s.refuse(w, r, requestOf(r), reasonUnknownMethod, connect.NewError(connect.CodeUnimplemented, fmt.Errorf(
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
	s.metrics.refused.WithLabelValues(reason).Inc()
	s.opts.logger.InfoContext(r.Context(), "HTTP request refused", "reason", reason, "protocol", req.protocol,
		"method", r.Method, "path", r.URL.Path, "peer", r.RemoteAddr, "origin", r.Header.Get("Origin"),
		"code", err.Code().String(), "error", err.Message())
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

// httpStatus is the HTTP status the Connect protocol gives code.
func httpStatus(code connect.Code) int {
	switch code {
	case connect.CodeInvalidArgument, connect.CodeUnknown:
		if code == connect.CodeUnknown {
			return http.StatusUnsupportedMediaType
		}
		return http.StatusBadRequest
	case connect.CodePermissionDenied:
		return http.StatusForbidden
	case connect.CodeResourceExhausted:
		return http.StatusTooManyRequests
	case connect.CodeUnimplemented:
		return http.StatusNotFound
	case connect.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// connectError is a gRPC status error as a Connect error, details included
// (RetryInfo, BadRequest).
func connectError(err error) *connect.Error {
	st := status.Convert(err)
	ce := connect.NewError(connect.Code(st.Code()), errors.New(st.Message()))
	for _, d := range st.Proto().GetDetails() {
		if detail, err := connect.NewErrorDetail(d); err == nil {
			ce.AddDetail(detail)
		}
	}
	return ce
}

// peerOf is the client of r as grpc-go's ServeHTTP will show it.
func peerOf(r *http.Request) *peer.Peer {
	p := &peer.Peer{Addr: stringAddr(r.RemoteAddr)}
	if r.TLS != nil {
		p.AuthInfo = credentials.TLSInfo{State: *r.TLS, CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}
	}
	return p
}

type stringAddr string

func (a stringAddr) Network() string { return "tcp" }
func (a stringAddr) String() string  { return string(a) }

// deadlineBody clears the read deadline once the body has been read
// whole.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	// Only once read whole: after a timeout the deadline must stay, or
	// closing the body would wait for the rest of it.
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// stallWriter gives every write of a response timeout to complete.
type stallWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (w *stallWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.ResponseWriter.Write(p)
}

func (w *stallWriter) Flush() {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	_ = w.rc.Flush()
}

func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusRecorder notes the HTTP status of a response.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

func (r *statusRecorder) Flush() {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// statusGuard runs a call on the gRPC server, cut off when Shutdown's
// context ends, and gives every call the gRPC server ends without a status
// one: grpc-go's ServeHTTP drops the status of a call whose request context
// ends, which vanguard would report as INTERNAL "missing trailer". The cut
// reaches the gRPC server's handler only, not vanguard, which then ends the
// stream with the status given here.
type statusGuard struct {
	g      http.Handler
	cutoff context.Context
}

func (sg statusGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(sg.cutoff, cancel)
	defer stop()
	hw := &headerWatch{ResponseWriter: w}
	sg.g.ServeHTTP(hw, r.WithContext(ctx))
	h := w.Header()
	code, msg := codes.Canceled, "the call was cancelled"
	cut := sg.cutoff.Err() != nil
	if cut {
		code, msg = codes.Unavailable, "the server is shutting down and cut the call off at the end of its drain: retry"
	}
	for _, prefix := range []string{"", http.TrailerPrefix} {
		switch h.Get(prefix + "Grpc-Status") {
		case "":
			continue
		case strconv.Itoa(int(codes.Canceled)):
			// The handler saw the cut as its context cancelled.
			if cut {
				h.Set(prefix+"Grpc-Status", strconv.Itoa(int(code)))
				h.Set(prefix+"Grpc-Message", msg)
			}
		}
		return
	}
	if !hw.wroteHeader {
		// Trailers-only, as grpc-go sends an error before any message.
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", strconv.Itoa(int(code)))
		h.Set("Grpc-Message", msg)
		w.WriteHeader(http.StatusOK)
		return
	}
	h.Set(http.TrailerPrefix+"Grpc-Status", strconv.Itoa(int(code)))
	h.Set(http.TrailerPrefix+"Grpc-Message", msg)
}

// headerWatch notes whether the response's headers went out. grpc-go
// needs it to be an http.Flusher.
type headerWatch struct {
	http.ResponseWriter
	wroteHeader bool
}

func (w *headerWatch) WriteHeader(code int) {
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *headerWatch) Write(p []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(p)
}

func (w *headerWatch) Flush() {
	w.wroteHeader = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *headerWatch) Unwrap() http.ResponseWriter { return w.ResponseWriter }
