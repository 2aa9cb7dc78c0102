// Command conformanceserver is the server under test of connectrpc's
// conformance runner (connectconformance --mode server): it reads the
// runner's ServerCompatRequest from stdin, builds the greeter's server as
// the greeter binary does, with the suite's ConformanceService added (see
// package conformance), serves both ports on loopback, writes the address of
// the one -port names to stdout as a ServerCompatResponse, and drains on
// SIGTERM.
//
// Usage:
//
//	conformanceserver [-port http|grpc] [-- greeter flags...]
//
// -port picks the port the runner's clients call: http (the default), the
// HTTP port's Connect, gRPC-Web and gRPC; grpc, the gRPC port. The greeter's
// own flags (greeter --help) configure the server as they would a
// deployment; TLS comes from the runner's request, and so does the message
// size limit when the request sets one. The address flags are ignored:
// both ports listen on 127.0.0.1, on ports the kernel picks. --memory-limit
// sizes the derived limits, as in the binary, but GOMEMLIMIT is left alone.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/acme/greeter/services/greeter/internal/config"
	"github.com/acme/greeter/services/greeter/internal/conformance"
	conformancev1 "github.com/acme/greeter/services/greeter/internal/conformance/gen/connectrpc/conformance/v1"
	"github.com/acme/greeter/services/greeter/internal/metrics"
	"github.com/acme/greeter/services/greeter/internal/server"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("conformanceserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.String("port", "http", "the port the runner calls: `http` or grpc")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *port != "http" && *port != "grpc" {
		fmt.Fprintf(stderr, "conformanceserver: -port %q: want http or grpc\n", *port)
		return exitUsage
	}
	cfg, err := config.Parse(fs.Args(), os.LookupEnv, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "conformanceserver:", err)
		}
		return exitUsage
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if err := serve(ctx, *port, cfg, logger, stdin, stdout); err != nil {
		logger.Error("conformance server failed", "error", err)
		return exitFailure
	}
	return exitOK
}

// serve builds and runs the server until ctx ends, then drains it.
func serve(ctx context.Context, port string, cfg config.Config, logger *slog.Logger, stdin io.Reader, stdout io.Writer) error {
	req, err := conformance.ReadRequest(stdin)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "conformanceserver-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	asked, err := conformance.Options(req, dir, logger)
	if err != nil {
		return err
	}
	m, err := metrics.New()
	if err != nil {
		return err
	}
	opts := append(cfg.ServerOptions(), server.WithLogger(logger), server.WithMetrics(m), server.WithVersion("conformance"))
	if cfg.MemoryLimit > 0 {
		opts = append(opts, server.WithMemoryLimit(cfg.MemoryLimit))
	}
	opts = append(opts, asked...)
	opts = append(opts, server.WithService(&conformancev1.ConformanceService_ServiceDesc, conformance.Service{}))
	srv, err := server.New(opts...)
	if err != nil {
		return err
	}
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		grpcLis.Close()
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(grpcLis, httpLis) }()

	addr := httpLis.Addr().(*net.TCPAddr)
	if port == "grpc" {
		addr = grpcLis.Addr().(*net.TCPAddr)
	}
	resp := &conformancev1.ServerCompatResponse{Host: addr.IP.String(), Port: uint32(addr.Port)}
	if req.GetUseTls() {
		resp.PemCert = req.GetServerCreds().GetCert()
	}
	if err := conformance.WriteResponse(stdout, resp); err != nil {
		srv.Shutdown(context.Background())
		return fmt.Errorf("write the response: %w", err)
	}
	logger.Info("serving", "port", port, "addr", addr.String(), "protocol", req.GetProtocol().String(),
		"http_version", req.GetHttpVersion().String(), "tls", req.GetUseTls(), "client_certs", len(req.GetClientTlsCert()) > 0,
		"message_receive_limit", req.GetMessageReceiveLimit())

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	if err := srv.Shutdown(context.Background()); err != nil && !errors.Is(err, server.ErrDrainTimeout) {
		return errors.Join(serveErr, err)
	}
	return serveErr
}
