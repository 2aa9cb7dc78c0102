package server

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// VersionHeader is the response header of grpc.health.v1.Health/Check that
// carries the server's build, "<module version> (<vcs revision>)"; greetctl
// `version --server` reads it. It is set on health checks only, keeping the
// greeting RPCs free of the extra header.
const VersionHeader = "greeter-server-version"

// versionedHealth is grpc-go's health server plus two things: the version
// header on Check, and Watch streams that end once they have told the
// client NOT_SERVING during a drain (otherwise every watcher would hold
// GracefulStop open until the drain timeout).
type versionedHealth struct {
	*health.Server
	header   metadata.MD
	draining *atomic.Bool
	// released is cancelled when graceful stop begins; it ends Watch
	// streams that have no NOT_SERVING to deliver (unknown services).
	released context.Context
}

func (h *versionedHealth) Check(ctx context.Context, in *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	// A header that cannot be set (the stream is gone) does not change the
	// answer, so the error is ignored.
	_ = grpc.SetHeader(ctx, h.header)
	return h.Server.Check(ctx, in)
}

func (h *versionedHealth) Watch(in *healthpb.HealthCheckRequest, stream healthgrpc.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	if !slices.Contains(Services, in.GetService()) {
		// Known services end through Send below, after NOT_SERVING has
		// reached the client; cancelling those too would race with it.
		stop := context.AfterFunc(h.released, cancel)
		defer stop()
	}
	return h.Server.Watch(in, &drainingWatch{Health_WatchServer: stream, ctx: ctx, draining: h.draining})
}

var errWatchDrained = errors.New("server draining")

type drainingWatch struct {
	healthgrpc.Health_WatchServer
	ctx      context.Context
	draining *atomic.Bool
}

func (w *drainingWatch) Context() context.Context { return w.ctx }

func (w *drainingWatch) Send(resp *healthpb.HealthCheckResponse) error {
	if err := w.Health_WatchServer.Send(resp); err != nil {
		return err
	}
	if resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING && w.draining.Load() {
		return errWatchDrained
	}
	return nil
}
