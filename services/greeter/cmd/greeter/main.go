// Command greeter serves acme.greeter.v1.GreeterService and the classic
// helloworld.Greeter over gRPC, with health, reflection, and an admin HTTP
// server for metrics and probes; and on an HTTP port, the same services over
// Connect, gRPC-Web and gRPC for browsers and plain HTTP callers.
//
// Run `greeter --help` for its flags and environment variables.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/acme/greeter/services/greeter/internal/config"
	"github.com/acme/greeter/services/greeter/internal/logsink"
	"github.com/acme/greeter/services/greeter/internal/memlimit"
	"github.com/acme/greeter/services/greeter/internal/metrics"
	"github.com/acme/greeter/services/greeter/internal/server"
	"github.com/acme/greeter/services/greeter/internal/tlsreload"
	"github.com/acme/greeter/services/greeter/internal/tracing"
	"github.com/acme/greeter/services/greeter/internal/version"
)

// Exit codes.
const (
	exitOK        = 0
	exitFailure   = 1
	exitBadConfig = 2
)

// gcPercent is the garbage collector's target (GOGC) unless the
// environment sets GOGC: between two collections the heap may grow to five
// times what is live rather than Go's default of twice. The greeter keeps
// a few MiB live (descriptors, validation rules, metrics), which Go's
// default would mark again every few MiB allocated: collections were a
// large share of the server's CPU. The price is memory under load, none at
// rest (the figures of both: docs/performance.md, "Figures behind the code").
// GOGC=100 or 200 trades it back; the memory limit (GOMEMLIMIT, which
// planMemory sets to 90% of the memory planned for) makes the collector
// run sooner as the heap nears it, and under memory pressure the admission controller
// lowers the target to 100 until the pressure is over.
const gcPercent = 400

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := config.Parse(args, os.LookupEnv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "greeter:", err)
		return exitBadConfig
	}
	if cfg.Version {
		fmt.Fprintln(stdout, "greeter", version.Get())
		return exitOK
	}

	sink := logsink.New(stderr)
	defer sink.Close()
	logger := newLogger(cfg, sink)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("greeter failed", "error", err)
		if errors.Is(err, config.ErrInvalid) {
			return exitBadConfig
		}
		return exitFailure
	}
	return exitOK
}

// run serves until ctx is done (a signal) or serving fails, then drains.
func run(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	m, err := metrics.New()
	if err != nil {
		return err
	}
	srv, tracer, err := newServer(ctx, cfg, logger, m)
	if err != nil {
		return err
	}
	grpcLis, adminLis, httpLis, err := listen(cfg)
	if err != nil {
		return err
	}
	metricsAddr, httpAddr := "", ""
	if adminLis != nil {
		metricsAddr = adminLis.Addr().String()
	}
	if httpLis != nil {
		httpAddr = httpLis.Addr().String()
	}

	errc := make(chan error, 2)
	go func() {
		if err := srv.Serve(grpcLis, httpLis); err != nil {
			errc <- err
		}
	}()
	var admin *http.Server
	if adminLis != nil {
		var adminOpts []metrics.HandlerOption
		if cfg.Pprof {
			adminOpts = append(adminOpts, metrics.WithPprof())
		}
		admin = &http.Server{Handler: m.Handler(srv.Ready, adminOpts...), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := admin.Serve(adminLis); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve metrics: %w", err)
			}
		}()
	}
	logger.Info("serving", "grpc_addr", grpcLis.Addr().String(), "metrics_addr", metricsAddr, "http_addr", httpAddr,
		"tls", cfg.TLSCert != "", "mtls", cfg.TLSClientCA != "", "tracing", tracer != nil, "version", version.Get().String())

	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("shutdown signal received")
	case serveErr = <-errc:
	}

	drainErr := drain(cfg, logger, srv, tracer, admin)
	logger.Info("stopped")
	return errors.Join(serveErr, drainErr)
}

// listen binds every port before anything is served, so that a port that
// cannot be bound fails the start cleanly: gRPC, then the admin server and
// the HTTP port unless their addresses are empty (nil listeners).
func listen(cfg config.Config) (grpcLis, adminLis, httpLis net.Listener, err error) {
	grpcLis, err = net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("listen for gRPC: %w", err)
	}
	if cfg.MetricsAddr != "" {
		if adminLis, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			grpcLis.Close()
			return nil, nil, nil, fmt.Errorf("listen for metrics: %w", err)
		}
	}
	if cfg.HTTPAddr != "" {
		if httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			grpcLis.Close()
			if adminLis != nil {
				adminLis.Close()
			}
			return nil, nil, nil, fmt.Errorf("listen for HTTP: %w", err)
		}
	}
	return grpcLis, adminLis, httpLis, nil
}

// newServer builds the gRPC server the configuration describes, with the
// memory limit planMemory decides and tracing as the OTEL_* environment
// says (the returned Provider is nil when it is off).
func newServer(ctx context.Context, cfg config.Config, logger *slog.Logger, m *metrics.Metrics) (*server.Server, *tracing.Provider, error) {
	memoryLimit, err := planMemory(cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	opts, err := serverOptions(cfg, logger, m, memoryLimit)
	if err != nil {
		return nil, nil, err
	}
	tracer, err := tracing.New(ctx, tracing.WithLogger(logger), tracing.WithServiceVersion(version.Get().Module))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: tracing: %w", config.ErrInvalid, err)
	}
	// nil, installing nothing, unless the OTEL_* environment turns tracing on.
	opts = append(opts, server.WithStatsHandler(tracer.ServerHandler(
		tracing.WithMessageEvents(cfg.TraceMessageEvents),
		tracing.WithHealthAndReflection(cfg.TraceHealthAndReflection),
	)))
	srv, err := server.New(opts...)
	if err != nil {
		return nil, nil, err
	}
	return srv, tracer, nil
}

// drain stops the server once a signal came or serving failed: the gRPC
// server's drain, then the spans still buffered, then the admin server
// (nil when disabled), which answered /readyz 503 throughout.
func drain(cfg config.Config, logger *slog.Logger, srv *server.Server, tracer *tracing.Provider, admin *http.Server) error {
	// Drain with a fresh context: the signal context is already done. A
	// second signal kills the process at once (default signal handling
	// again), for operators who will not wait for the drain.
	signal.Reset(syscall.SIGTERM, os.Interrupt)
	drainEnd := time.Now().Add(cfg.DrainDelay + cfg.DrainTimeout)
	drainErr := srv.Shutdown(context.Background())
	if errors.Is(drainErr, server.ErrDrainTimeout) {
		// Stopping was asked for and happened; the cut-off RPCs are worth a
		// warning, not a failed exit.
		logger.Warn("drain timed out, remaining RPCs were cancelled", "drain_timeout", cfg.DrainTimeout)
		drainErr = nil
	}
	if err := flushTraces(tracer, drainEnd); err != nil {
		// Spans are worth a warning, not a failed exit.
		logger.Warn("tracing: spans still buffered were not all exported", "error", err)
	}
	if admin != nil {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := admin.Shutdown(shutdownCtx); err != nil {
			drainErr = errors.Join(drainErr, fmt.Errorf("shut down metrics server: %w", err))
		}
	}
	return drainErr
}

// planMemory decides the memory limit the server plans for (--memory-limit,
// else the cgroup's, else server.DefaultMemoryLimit) and sets GOMEMLIMIT
// from it: the server's limits are sized for that memory, so the garbage
// collector must keep the heap within it too, or a burst's garbage (GOGC
// is 400) takes the process past what its limits planned for.
func planMemory(cfg config.Config, logger *slog.Logger) (int64, error) {
	limit, source, err := memlimit.Limit(cfg.MemoryLimit, memlimit.FromCgroup, server.DefaultMemoryLimit)
	if err != nil {
		logger.Warn("memory limit unknown, planning for the default", "memory_limit", limit, "error", err)
	}
	if source == memlimit.SourceDefault {
		logger.Info("no memory limit set or found in the cgroup: planning for the default", "memory_limit", limit)
	}
	goLimit, err := memlimit.SetGoMemLimit(limit)
	if err != nil {
		return 0, fmt.Errorf("%w: set GOMEMLIMIT: %w", config.ErrInvalid, err)
	}
	logger.Info("memory limit", "memory_limit", limit, "source", string(source), "gomemlimit", goLimit)
	return limit, nil
}

// minTraceFlush is the least time the spans still buffered after the
// drain get to be exported, even when the drain used up its timeout: the
// spans of the RPCs it cut off are the ones most worth seeing.
const minTraceFlush = time.Second

// flushTraces exports the spans still buffered within what is left of the
// drain's budget (drain delay + drain timeout from the signal, at least
// minTraceFlush), so that the process exits within the grace period an
// orchestrator gives it. An unreachable collector costs at most that, or
// OTEL_EXPORTER_OTLP_TIMEOUT if shorter.
func flushTraces(tracer *tracing.Provider, drainEnd time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), max(time.Until(drainEnd), minTraceFlush))
	defer cancel()
	return tracer.Shutdown(ctx)
}

// serverOptions translates the configuration into server options.
func serverOptions(cfg config.Config, logger *slog.Logger, m *metrics.Metrics, memoryLimit int64) ([]server.Option, error) {
	opts := append(cfg.ServerOptions(),
		server.WithLogger(logger),
		server.WithMetrics(m),
		server.WithVersion(version.Get().String()),
		server.WithMemoryLimit(memoryLimit),
	)
	if cfg.TLSCert != "" {
		reloader, err := tlsreload.New(cfg.TLSCert, cfg.TLSKey,
			tlsreload.WithClientCA(cfg.TLSClientCA), tlsreload.WithLogger(logger))
		if err != nil {
			// The files exist (config checked that) but do not hold a
			// usable certificate: still a configuration mistake.
			return nil, fmt.Errorf("%w: %w", config.ErrInvalid, err)
		}
		opts = append(opts, server.WithTLS(reloader.ServerConfig()))
	}
	return opts, nil
}

// newLogger logs to the buffered sink; warnings and errors are flushed at
// once (see package logsink).
func newLogger(cfg config.Config, sink *logsink.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler = slog.NewTextHandler(sink, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(sink, opts)
	}
	return slog.New(logsink.Handler(h, sink, slog.LevelWarn))
}
