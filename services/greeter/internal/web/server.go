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
	// status error that refuses the call. The admitted context carries
	// client as its peer (peer.NewContext).
	Admit(ctx context.Context, client *peer.Peer, method string) (admitted context.Context, release func(), err error)
}

// Server serves a grpc.Server's services over HTTP; see the package doc.
type Server struct {
	cfg     Config
	cors    http.Handler // CORS, then serveCall; nil: no CORS (Config.AllowedOrigins)
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

// cutGrace is how long calls get to end once Shutdown has cancelled them,
// before their connections are closed.
const cutGrace = time.Second

// New returns a Server of cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Codec == nil || cfg.Transport == nil || cfg.Logger == nil || cfg.MaxMessageSize <= 0 {
		return nil, errors.New("build HTTP server: Config needs Codec, Transport, Logger and a positive MaxMessageSize")
	}
	m, err := newHTTPMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("build HTTP server: %w", err)
	}
	s := &Server{cfg: cfg, errors: connect.NewErrorWriter(), metrics: m, workers: newWorkers(cfg.Workers)}
	s.serve = http.HandlerFunc(s.serveRequest)
	if cfg.SendStallTimeout > 0 {
		// A connection that takes no bytes for this long is closed,
		// which ends every call on it.
		s.watch = newWriteWatch(cfg.SendStallTimeout, func(remote net.Addr) {
			m.sendStalls.Inc()
			cfg.Logger.Warn("HTTP connection closed: a write to it waited longer than the send-stall timeout on a client that reads nothing",
				"peer", remote.String(), "send_stall_timeout", cfg.SendStallTimeout)
		})
		// Started with the server, not its first listener: the calls'
		// write deadlines (stallWriter) are renewed as its tick moves.
		go s.watch.run()
	}
	s.cutoff, s.cut = context.WithCancel(context.Background())
	if s.methods, err = s.register(cfg.Services); err != nil {
		return nil, fmt.Errorf("build HTTP server: %w", err)
	}
	names := make([]string, 0, len(cfg.Services))
	for _, svc := range cfg.Services {
		names = append(names, svc.Desc.ServiceName)
	}
	slices.Sort(names)
	s.served = strings.Join(names, ", ")
	if len(cfg.AllowedOrigins) > 0 {
		// The request's classification reaches serveCall through CORS in
		// its context.
		afterCORS := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveCall(w, r, requestOf(r)) })
		s.cors = cors.New(cors.Options{
			AllowedOrigins: cfg.AllowedOrigins,
			AllowedMethods: connectcors.AllowedMethods(),
			// traceparent and tracestate: a browser's trace joins the server's.
			AllowedHeaders: append(connectcors.AllowedHeaders(), "Traceparent", "Tracestate"),
			ExposedHeaders: append(connectcors.ExposedHeaders(), cfg.ExposedHeaders...),
			MaxAge:         int(PreflightMaxAge.Seconds()),
		}).Handler(afterCORS)
	}

	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	if cfg.TLS != nil {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	s.http = cfg.Transport
	s.http.Handler = s
	s.http.Protocols = protocols
	// Every call's context ends with Shutdown's cut: the calls still
	// running at the end of the drain are cancelled.
	s.http.BaseContext = func(net.Listener) context.Context { return s.cutoff }
	s.http.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, &connPeer{peer: peer.Peer{Addr: c.RemoteAddr()}})
	}
	// net/http's own complaints (a failed TLS handshake, a panic outside
	// the gRPC server's recovery) go to the server's log.
	s.http.ErrorLog = slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)
	if cfg.TLS != nil {
		s.http.TLSConfig = withALPN(cfg.TLS)
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
	if s.cfg.Listener != nil {
		lis = s.cfg.Listener(lis)
	}
	if s.watch != nil {
		lis = s.watch.listener(lis)
	}
	var err error
	if s.cfg.TLS != nil {
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
// (Config.Workers); an HTTP/1 request on its connection's goroutine, which
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
	if origin := r.Header.Get("Origin"); origin != "" && len(s.cfg.AllowedOrigins) > 0 && !s.originAllowed(origin) {
		s.refuse(rec, r, req, reasonOrigin, connect.NewError(connect.CodePermissionDenied,
			fmt.Errorf("origin %q may not call this server: the server's allowed origins%s do not list it", origin, hint(s.cfg.Names.AllowedOrigins))))
		return
	}
	if s.cors == nil {
		s.serveCall(rec, r, req)
		return
	}
	s.cors.ServeHTTP(rec, r.WithContext(withRequest(r.Context(), req)))
}

func (s *Server) originAllowed(origin string) bool {
	for _, o := range s.cfg.AllowedOrigins {
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
