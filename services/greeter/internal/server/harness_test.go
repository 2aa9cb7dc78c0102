package server

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/gen/go/helloworld"

	"github.com/acme/greeter/services/greeter/internal/metrics"
	"github.com/acme/greeter/services/greeter/internal/testconn"
)

// harness is one server on an in-memory listener and a client connected to
// it.
type harness struct {
	srv     *Server
	conn    *grpc.ClientConn
	greeter greeterv1.GreeterServiceClient
	classic helloworld.GreeterClient
	health  healthgrpc.HealthClient
	metrics *metrics.Metrics
	logs    *syncBuffer
	lis     testconn.Listener
}

type config struct {
	opts       []Option
	httpLis    net.Listener // the HTTP port's; nil serves none
	level      slog.Level
	clientCred credentials.TransportCredentials
	dialOpts   []grpc.DialOption
}

type harnessOption func(*config)

func withOptions(o ...Option) harnessOption   { return func(c *config) { c.opts = append(c.opts, o...) } }
func withLogLevel(l slog.Level) harnessOption { return func(c *config) { c.level = l } }
func withDialOptions(o ...grpc.DialOption) harnessOption {
	return func(c *config) { c.dialOpts = append(c.dialOpts, o...) }
}
func withClientCreds(cr credentials.TransportCredentials) harnessOption {
	return func(c *config) { c.clientCred = cr }
}

func start(t testing.TB, hopts ...harnessOption) *harness {
	t.Helper()
	cfg := config{level: slog.LevelInfo, clientCred: insecure.NewCredentials()}
	for _, o := range hopts {
		o(&cfg)
	}
	m, err := metrics.New()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: cfg.level}))
	opts := append([]Option{WithLogger(logger), WithMetrics(m), WithVersion("v9.9.9 (abc123)"), WithSettingNames(flagNames)}, cfg.opts...)
	srv, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	lis := testconn.Listen()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis, cfg.httpLis) }()

	conn, err := lis.NewClient(append([]grpc.DialOption{grpc.WithTransportCredentials(cfg.clientCred)}, cfg.dialOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		if cfg.httpLis != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.web.Shutdown(ctx)
		}
		srv.grpc.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &harness{
		srv:     srv,
		conn:    conn,
		greeter: greeterv1.NewGreeterServiceClient(conn),
		classic: helloworld.NewGreeterClient(conn),
		health:  healthgrpc.NewHealthClient(conn),
		metrics: m,
		logs:    logs,
		lis:     lis,
	}
}

// flagNames name the settings as the binary's flags do, so that the tests
// see the answers an operator reads.
var flagNames = SettingNames{
	MaxMessageSize:      "--max-recv-msg-size",
	AllowedOrigins:      "--cors-allowed-origins",
	FirstMessageTimeout: "--first-message-timeout",
}

// syncBuffer is a bytes.Buffer safe for the server's and the test's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines returns the log lines containing every one of parts.
func (s *syncBuffer) lines(parts ...string) []string {
	var out []string
	for l := range strings.Lines(s.String()) {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// violation is the first BadRequest field violation of err.
type violation struct{ field, rule string }

func badRequest(t *testing.T, err error) []violation {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("code = %v (%v), want InvalidArgument", st.Code(), err)
	}
	var out []violation
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				if fv.GetDescription() == "" {
					t.Errorf("violation %s/%s has no description", fv.GetField(), fv.GetReason())
				}
				out = append(out, violation{fv.GetField(), fv.GetReason()})
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no BadRequest field violation in %v", err)
	}
	return out
}

// metricValue sums the samples of metric name whose labels include labels.
func metricValue(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			if matches(s, labels) {
				sum += s.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func matches(m *dto.Metric, labels map[string]string) bool {
	found := 0
	for _, lp := range m.GetLabel() {
		if v, ok := labels[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			found++
		}
	}
	return found == len(labels)
}

// handlerReturns reports, through the returned channel, each time a
// streaming handler returns: tests wait on it to prove a handler stopped,
// instead of sleeping.
func handlerReturns() (grpc.StreamServerInterceptor, <-chan error) {
	ch := make(chan error, 1000)
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		err := handler(srv, ss)
		ch <- err
		return err
	}, ch
}
