package server

import (
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/acme/greeter/services/greeter/internal/admission"
)

// The transport settings of both ports, from the one options: a setting
// both ports honour is one line in each function.

// grpcTransport is the gRPC port's transport settings.
func (o *options) grpcTransport() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.KeepaliveParams(o.keepalive),
		grpc.KeepaliveEnforcementPolicy(o.enforcement),
		grpc.MaxRecvMsgSize(o.maxRecvMsgSize),
		grpc.MaxSendMsgSize(o.maxSendMsgSize),
		grpc.MaxConcurrentStreams(o.maxStreams),
		grpc.ConnectionTimeout(o.connTimeout),
		grpc.StaticStreamWindowSize(streamWindow),
		grpc.StaticConnWindowSize(connWindow(o.maxStreams)),
	}
	if o.streamWorkers > 0 {
		opts = append(opts, grpc.NumStreamWorkers(o.streamWorkers))
	}
	creds := insecure.NewCredentials()
	if o.tlsConfig != nil {
		creds = credentials.NewTLS(o.tlsConfig)
	}
	// Through admission's, on plaintext too: they bound what grpc-go
	// queues for a response stream by what it has written.
	return append(opts, grpc.Creds(admission.Credentials(creds)))
}

// httpTransport is the HTTP port's transport settings (package web sets
// the rest of the http.Server); the message size, workers, TLS and the
// per-call timeouts reach it through web.Config (httpPort).
func (o *options) httpTransport() *http.Server {
	return &http.Server{
		// The gRPC port's handshake timeout bounds a slowloris's headers.
		ReadHeaderTimeout: o.connTimeout,
		// 0 never closes an idle connection, as on the gRPC port (net/http
		// reads 0 as ReadTimeout, which is 0: none).
		IdleTimeout: o.keepalive.MaxConnectionIdle,
		// A Connect GET carries its message in the URL.
		MaxHeaderBytes: 16<<10 + 2*o.maxRecvMsgSize,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          int(o.maxStreams),
			MaxReceiveBufferPerStream:     streamWindow,
			MaxReceiveBufferPerConnection: int(connWindow(o.maxStreams)),
			SendPingTimeout:               o.keepalive.Time,
			PingTimeout:                   o.keepalive.Timeout,
		},
	}
}
