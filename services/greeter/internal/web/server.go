package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	connectcors "connectrpc.com/cors"
	"github.com/rs/cors"
	"google.golang.org/grpc/encoding"
	encodingproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/peer"
)

// Admission decides whether a call may start, before any of its body is
// read: what grpc.InTapHandle does on the gRPC port.
type Admission interface {
	// Admit charges the call of method ("/acme.greeter.v1.GreeterService/
	// SayHello") from client, whose address and TLS state are as the
	// interceptors will see them. It returns the context the call
	// must run in and release, which ends the charge once the call is over
	// and may be called after the server has released it; or the gRPC
	// status error that refuses the call.
	Admit(ctx context.Context, client *peer.Peer, method string) (admitted context.Context, release func(), err error)
}

// Server serves a grpc.Server's services over HTTP; see the package doc.
type Server struct {
	opts    options
	cors    http.Handler // CORS, then serveCall; nil: no CORS (WithAllowedOrigins)
	methods map[string]methodInfo
	served  string // the services, for the message of an unknown method
	errors  *connect.ErrorWriter
	metrics *httpMetrics
	http    *http.Server
	workers *workers
	watch   *writeWatch     // nil: no send-stall timeout
	serve   http.Handler    // serveRequest, once
	cutoff  context.Context // done once Shutdown cuts the calls off
	cut     context.CancelFunc
}

type methodInfo struct {
	clientStreams bool
	bidi          bool
	handler       http.Handler // connect-go's
}

// cutGrace is how long calls get to end once Shutdown has cancelled them,
// before their connections are closed.
const cutGrace = time.Second

// New returns a Server of services.
func New(services []Service, opts ...Option) (*Server, error) {
	o := defaultOptions()
	var errs []error
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("build HTTP server: %w", err)
	}
	if o.codec == nil {
		o.codec = encoding.GetCodecV2(encodingproto.Name)
	}
	m, err := newHTTPMetrics(o.registerer)
	if err != nil {
		return nil, fmt.Errorf("build HTTP server: %w", err)
	}
	s := &Server{opts: o, methods: map[string]methodInfo{}, errors: connect.NewErrorWriter(), metrics: m, workers: newWorkers(o.workers)}
	s.serve = http.HandlerFunc(s.serveRequest)
	if o.sendStallTimeout > 0 {
		// A connection that takes no bytes for this long is closed,
		// which ends every call on it.
		s.watch = newWriteWatch(o.sendStallTimeout, func(remote net.Addr) {
			m.sendStalls.Inc()
			o.logger.Warn("HTTP connection closed: a write to it waited longer than the send-stall timeout on a client that reads nothing",
				"peer", remote.String(), "send_stall_timeout", o.sendStallTimeout)
		})
	}
	s.cutoff, s.cut = context.WithCancel(context.Background())
	handlers, err := s.handlers(services)
	if err != nil {
		return nil, fmt.Errorf("build HTTP server: %w", err)
	}
	names := make([]string, 0, len(services))
	for _, svc := range services {
		names = append(names, svc.Desc.ServiceName)
		for _, st := range svc.Desc.Streams {
			path := "/" + svc.Desc.ServiceName + "/" + st.StreamName
			s.methods[path] = methodInfo{clientStreams: st.ClientStreams, bidi: st.ClientStreams && st.ServerStreams, handler: handlers[path]}
		}
		for _, md := range svc.Desc.Methods {
			path := "/" + svc.Desc.ServiceName + "/" + md.MethodName
			s.methods[path] = methodInfo{handler: handlers[path]}
		}
	}
	slices.Sort(names)
	s.served = strings.Join(names, ", ")
	if len(o.origins) > 0 {
		// The request's classification reaches serveCall through CORS in
		// its context.
		afterCORS := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveCall(w, r, requestOf(r)) })
		s.cors = cors.New(cors.Options{
			AllowedOrigins: o.origins,
			AllowedMethods: connectcors.AllowedMethods(),
			// traceparent and tracestate: a browser's trace joins the server's.
			AllowedHeaders: append(connectcors.AllowedHeaders(), "Traceparent", "Tracestate"),
			ExposedHeaders: append(connectcors.ExposedHeaders(), o.exposedHeaders...),
			MaxAge:         int(PreflightMaxAge.Seconds()),
		}).Handler(afterCORS)
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
		HTTP2:          &http.HTTP2Config{MaxConcurrentStreams: int(o.maxStreams)},
		// Every call's context ends with Shutdown's cut: the calls still
		// running at the end of the drain are cancelled.
		BaseContext: func(net.Listener) context.Context { return s.cutoff },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, &connPeer{peer: peer.Peer{Addr: c.RemoteAddr()}})
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
	if s.watch != nil {
		lis = s.watch.listener(lis)
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
func (s *Server) Shutdown(ctx context.Context) error {
	defer s.workers.stop()
	if s.watch != nil {
		defer s.watch.stop()
	}
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

// ServeHTTP serves one request: an HTTP/2 request on a worker
// (WithWorkers); an HTTP/1 request on its connection's goroutine, which
// serves the connection's requests one after another and keeps its stack
// from one to the next.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		s.serveRequest(w, r)
		return
	}
	s.workers.serve(s.serve, w, r)
}

// serveRequest serves one request: counted by protocol, refused if its
// origin is not allowed, else handed to CORS and the call's checks.
func (s *Server) serveRequest(w http.ResponseWriter, r *http.Request) {
	req := classify(r)
	rec := &statusRecorder{ResponseWriter: w}
	defer func() { s.metrics.request(req.protocol, req.codec, rec.status()).Inc() }()
	if origin := r.Header.Get("Origin"); origin != "" && len(s.opts.origins) > 0 && !s.originAllowed(origin) {
		s.refuse(rec, r, req, reasonOrigin, connect.NewError(connect.CodePermissionDenied,
			fmt.Errorf("origin %q may not call this server: the server's --cors-allowed-origins does not list it", origin)))
		return
	}
	if s.cors == nil {
		s.serveCall(rec, r, req)
		return
	}
	s.cors.ServeHTTP(rec, r.WithContext(withRequest(r.Context(), req)))
}

func (s *Server) originAllowed(origin string) bool {
	for _, o := range s.opts.origins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

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
