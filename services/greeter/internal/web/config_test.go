package web_test

import (
	"log/slog"
	"net/http"

	"google.golang.org/grpc/encoding"
	encodingproto "google.golang.org/grpc/encoding/proto"

	"github.com/acme/greeter/services/greeter/internal/web"
)

// testConfig is the least Config that serves services: package server's
// settings are tested with package server.
func testConfig(services ...web.Service) web.Config {
	return web.Config{
		Services:       services,
		Codec:          encoding.GetCodecV2(encodingproto.Name),
		Transport:      &http.Server{},
		MaxMessageSize: 64 << 10,
		Logger:         slog.Default(),
	}
}
