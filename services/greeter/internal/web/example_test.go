package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/encoding"
	encodingproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/acme/greeter/services/greeter/internal/web"
)

// Serving a gRPC service over Connect, gRPC-Web and gRPC, and calling it
// with plain HTTP and JSON.
func ExampleNew() {
	// Package server fills every field from its options; here, by hand.
	srv, err := web.New(web.Config{
		Services:       []web.Service{{Desc: &healthgrpc.Health_ServiceDesc, Impl: health.NewServer()}},
		Codec:          encoding.GetCodecV2(encodingproto.Name),
		Transport:      &http.Server{ReadHeaderTimeout: 10 * time.Second},
		MaxMessageSize: 64 << 10,
		AllowedOrigins: []string{"https://app.example"},
		Logger:         slog.Default(),
	})
	if err != nil {
		panic(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(lis)
	defer srv.Shutdown(context.Background())

	req, _ := http.NewRequest("POST", "http://"+lis.Addr().String()+"/grpc.health.v1.Health/Check", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Protocol-Version", "1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(res.StatusCode, string(body))
	// Output: 200 {"status":"SERVING"}
}
