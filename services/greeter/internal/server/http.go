package server

import (
	"github.com/acme/greeter/services/greeter/internal/web"
)

// httpPort builds the HTTP port (package web): the services registered on
// the gRPC port, over Connect, gRPC-Web and gRPC, with the gRPC port's
// interceptor chain, codec, stats handlers, TLS, admission, connection caps
// and limits, each taken from the same options.
func (s *Server) httpPort() (*web.Server, error) {
	o := &s.opts
	return web.New(web.Config{
		Services:            s.services,
		Codec:               s.chain.codec,
		Unary:               s.chain.unary,
		Stream:              s.chain.stream,
		StatsHandlers:       o.statsHandlers,
		Admission:           s.admission,
		Listener:            s.admission.Listener,
		TLS:                 o.tlsConfig,
		Transport:           o.httpTransport(),
		MaxMessageSize:      o.maxRecvMsgSize,
		Workers:             int(o.streamWorkers),
		FirstMessageTimeout: s.limits.FirstMessageTimeout,
		SendStallTimeout:    s.limits.SendStallTimeout,
		AllowedOrigins:      o.allowedOrigins,
		ExposedHeaders:      []string{VersionHeader},
		Names:               o.settingNames,
		Logger:              o.logger,
		Registerer:          o.metrics.Registry,
	})
}
