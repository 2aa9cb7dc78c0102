package metrics

import (
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/services/greeter/internal/testconn"
)

// outcomes answers by name: "" OK, "invalid" INVALID_ARGUMENT, "plain" a
// non-status error (UNKNOWN), "canceled" a bare context error (CANCELLED),
// "code99" a code beyond the known ones.
type outcomes struct {
	greeterv1.UnimplementedGreeterServiceServer
}

func outcome(name string) error {
	switch name {
	case "invalid":
		return status.Error(codes.InvalidArgument, "bad")
	case "plain":
		return errors.New("plain")
	case "canceled":
		return context.Canceled
	case "code99":
		return status.Error(codes.Code(99), "odd")
	}
	return nil
}

func (outcomes) SayHello(_ context.Context, req *greeterv1.SayHelloRequest) (*greeterv1.SayHelloResponse, error) {
	if err := outcome(req.GetName()); err != nil {
		return nil, err
	}
	return &greeterv1.SayHelloResponse{Message: "hi"}, nil
}

func (outcomes) SayHelloStream(req *greeterv1.SayHelloStreamRequest, stream grpc.ServerStreamingServer[greeterv1.SayHelloStreamResponse]) error {
	for range req.GetCount() {
		if err := stream.Send(&greeterv1.SayHelloStreamResponse{}); err != nil {
			return err
		}
	}
	return outcome(req.GetName())
}

func (outcomes) SayHelloToAll(stream grpc.ClientStreamingServer[greeterv1.SayHelloToAllRequest, greeterv1.SayHelloToAllResponse]) error {
	for {
		if _, err := stream.Recv(); errors.Is(err, io.EOF) {
			return stream.SendAndClose(&greeterv1.SayHelloToAllResponse{})
		} else if err != nil {
			return err
		}
	}
}

func (outcomes) SayHelloChat(stream grpc.BidiStreamingServer[greeterv1.SayHelloChatRequest, greeterv1.SayHelloChatResponse]) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := outcome(req.GetName()); err != nil {
			return err
		}
		if err := stream.Send(&greeterv1.SayHelloChatResponse{}); err != nil {
			return err
		}
	}
}

// TestSameAsGoGRPCMiddleware drives one server through go-grpc-middleware's
// Prometheus provider, as the greeter used it, and ServerMetrics side by
// side, each with a registry of its own, and compares what the two
// registries expose: every family (name, help, type), every series (labels)
// and every value — counters exactly, histograms by buckets and sample
// count (the durations of one RPC differ by the nanoseconds between the
// two interceptors).
func TestSameAsGoGRPCMiddleware(t *testing.T) {
	theirs := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(HandlingBuckets)))
	ours := NewServerMetrics(HandlingBuckets)
	theirReg, ourReg := prometheus.NewRegistry(), prometheus.NewRegistry()
	theirReg.MustRegister(theirs)
	ourReg.MustRegister(ours)

	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(theirs.UnaryServerInterceptor(), ours.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(theirs.StreamServerInterceptor(), ours.StreamServerInterceptor()),
	)
	greeterv1.RegisterGreeterServiceServer(srv, outcomes{})
	theirs.InitializeMetrics(srv)
	ours.InitializeMetrics(srv)
	lis := testconn.Listen()
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := lis.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := greeterv1.NewGreeterServiceClient(conn)
	ctx := context.Background()

	for _, name := range []string{"", "", "invalid", "plain", "canceled", "code99"} {
		_, _ = client.SayHello(ctx, &greeterv1.SayHelloRequest{Name: name})
	}
	for _, name := range []string{"", "invalid"} {
		stream, err := client.SayHelloStream(ctx, &greeterv1.SayHelloStreamRequest{Name: name, Count: 3})
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := stream.Recv(); err != nil {
				break
			}
		}
	}
	toAll, err := client.SayHelloToAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := toAll.Send(&greeterv1.SayHelloToAllRequest{Name: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := toAll.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	chat, err := client.SayHelloChat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "invalid"} {
		_ = chat.Send(&greeterv1.SayHelloChatRequest{Name: name})
		if _, err := chat.Recv(); err != nil {
			break
		}
	}
	// A stream the client abandons.
	cctx, cancel := context.WithCancel(ctx)
	abandoned, err := client.SayHelloChat(cctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = abandoned.Send(&greeterv1.SayHelloChatRequest{Name: "a"})
	_, _ = abandoned.Recv()
	cancel()
	// A server stream whose sends start failing when the client goes.
	sctx, cancel := context.WithCancel(ctx)
	long, err := client.SayHelloStream(sctx, &greeterv1.SayHelloStreamRequest{Count: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = long.Recv()
	cancel()
	// Graceful stop waits for every handler, so both have counted all.
	srv.GracefulStop()

	want, got := gather(t, theirReg), gather(t, ourReg)
	if len(want) == 0 || !slices.Contains(want, "grpc_server_handled_total counter [grpc_code=Code(99) grpc_method=SayHello grpc_service=acme.greeter.v1.GreeterService grpc_type=unary] 1") {
		t.Fatalf("the reference exposition lacks what this test drives:\n%s", strings.Join(want, "\n"))
	}
	if !slices.Equal(got, want) {
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("missing: %s", w)
			}
		}
		for _, g := range got {
			if !slices.Contains(want, g) {
				t.Errorf("unexpected: %s", g)
			}
		}
	}
}

// gather lists what reg exposes, a line per family and per series, sorted.
func gather(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range families {
		typ := strings.ToLower(f.GetType().String())
		out = append(out, f.GetName()+" "+typ+" help="+f.GetHelp())
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			line := f.GetName() + " " + typ + " [" + strings.Join(labels, " ") + "] "
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				line += ftoa(m.GetCounter().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				var bounds []string
				for _, b := range h.GetBucket() {
					bounds = append(bounds, ftoa(b.GetUpperBound()))
				}
				line += "count=" + ftoa(float64(h.GetSampleCount())) + " buckets=" + strings.Join(bounds, ",")
			default:
				line += m.String()
			}
			out = append(out, line)
		}
	}
	slices.Sort(out)
	return out
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
