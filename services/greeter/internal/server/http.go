package server

import (
	"slices"

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

// WithAllowedOrigins sets the origins ("https://app.example.com") whose
// pages may call the HTTP port from a browser (CORS); "*" allows any. A
// request with an Origin outside the list is refused with
// PERMISSION_DENIED. The default, no origin, sends no CORS headers and
// refuses nothing: a page served from the same origin as the API (behind
// one proxy) needs none. Each use adds to the previous ones; an origin
// must not be empty.
func WithAllowedOrigins(origins ...string) Option {
	return func(o *options) error {
		if slices.Contains(origins, "") {
			return &OptionError{"WithAllowedOrigins", origins, "an origin must not be empty"}
		}
		o.allowedOrigins = append(o.allowedOrigins, origins...)
		return nil
	}
}

// SettingNames are the names an operator knows settings by, as
// WithSettingNames takes them.
type SettingNames = web.SettingNames

// WithSettingNames names the settings behind refused calls as the operator
// sets them (main passes the binary's flags, "--max-recv-msg-size"), so
// that the answer to a refused call points to the one to change. The
// default names none.
func WithSettingNames(n SettingNames) Option {
	return func(o *options) error { o.settingNames = n; return nil }
}
