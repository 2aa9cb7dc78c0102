package server

// The HTTP port (package web) in the server's terms: its settings taken
// from the gRPC port's, its admission today's admission.Controller, and its
// place in the drain. Issue 22; kept in this one file so that the settings
// and admission redesigns can re-point it.

import (
	"context"

	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/tap"

	"github.com/acme/greeter/services/greeter/internal/admission"
	"github.com/acme/greeter/services/greeter/internal/web"
)

// Web builds the HTTP port of s: both greeting contracts and health over
// Connect, gRPC-Web and gRPC, with the gRPC port's TLS, message size,
// connection caps, admission, timeouts and metrics; opts add to those (the
// CORS origins) or override them. Shutdown drains it before the gRPC port.
// Call it once, before Shutdown.
func (s *Server) Web(opts ...web.Option) (*web.Server, error) {
	o := s.opts
	base := []web.Option{
		web.WithCodec(s.chain.codec),
		web.WithUnaryInterceptors(s.chain.unary...),
		web.WithStreamInterceptors(s.chain.stream...),
		web.WithStatsHandlers(o.statsHandlers...),
		web.WithTLS(o.tlsConfig),
		web.WithMaxMessageSize(o.maxRecvMsgSize),
		web.WithMaxConcurrentStreams(o.maxStreams),
		web.WithWorkers(int(o.streamWorkers)),
		web.WithReadHeaderTimeout(o.connTimeout),
		web.WithFirstMessageTimeout(s.limits.FirstMessageTimeout),
		web.WithSendStallTimeout(s.limits.SendStallTimeout),
		web.WithAdmission(webAdmission{s.admission}),
		web.WithListener(s.admission.Listener),
		web.WithLogger(o.logger),
		web.WithRegisterer(o.metrics.Registry),
		web.WithExposedHeaders(VersionHeader),
	}
	if idle := o.keepalive.MaxConnectionIdle; idle > 0 {
		base = append(base, web.WithIdleTimeout(idle))
	}
	w, err := web.New(s.services, append(base, opts...)...)
	if err != nil {
		return nil, err
	}
	s.web = w
	return w, nil
}

// webAdmission is package web's Admission over the admission.Controller:
// the HTTP call goes through the Controller's tap handle as a native one
// would, and the server's interceptors release it when its handler returns;
// release frees at once a call that ended before its handler ran.
type webAdmission struct{ c *admission.Controller }

func (a webAdmission) Admit(ctx context.Context, client *peer.Peer, method string) (context.Context, func(), error) {
	admitted, err := a.c.TapHandle(peer.NewContext(ctx, client), &tap.Info{FullMethodName: method})
	if err != nil {
		return nil, nil, err
	}
	release := func() { a.c.Release(admitted) }
	// Refused before its body is read, not by the interceptor after.
	if err := admission.Refused(admitted); err != nil {
		release()
		return nil, nil, err
	}
	return admitted, release, nil
}

// shutdownWeb starts draining the HTTP port, if there is one, closing
// stopped once it has; cut cancels the calls still in flight there, which
// then end with their status.
func (s *Server) shutdownWeb(stopped chan<- struct{}) (cut func()) {
	if s.web == nil {
		close(stopped)
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		if err := s.web.Shutdown(ctx); err != nil {
			s.opts.logger.Warn("HTTP port: drain timed out, remaining calls were cancelled", "error", err)
		}
		close(stopped)
	}()
	return cancel
}
