// Package greettest runs in-process greeter servers for greetctl's tests.
// They implement the contract from the generated interfaces, not the real
// server: the client must not depend on the server module, and tests need
// servers that misbehave on demand.
package greettest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/gen/go/helloworld"
)

// Names that make the servers fail on purpose.
const (
	// CodePrefix followed by a code name, e.g. "!code=NotFound", makes a
	// unary call fail with that code.
	CodePrefix = "!code="
	// Details makes a unary call fail with InvalidArgument and several
	// kinds of details, including a DebugInfo with stack entries that the
	// client must not print.
	Details = "!details"
)

// VersionHeader is the greeter-server-version header the servers set on
// health Check responses.
const VersionHeader = "greeter-server-version"

// Options configures a Server.
type Options struct {
	// Addr is the address to listen on; default 127.0.0.1:0.
	Addr string
	// TLS serves TLS instead of plaintext.
	TLS *tls.Config
	// FailUnary is how many unary greeter calls fail with Unavailable
	// before the next succeeds.
	FailUnary int
	// Version is the greeter-server-version header value; empty sends none.
	Version string
	// HoldStreamAfter, if positive, makes SayHelloStream stop after that
	// many greetings, close Held and wait until the client cancels.
	HoldStreamAfter int
}

// Server is a running test server.
type Server struct {
	// Addr is the 127.0.0.1:port address the server listens on.
	Addr string
	// Health is the server's health service; set statuses on it.
	Health *health.Server
	// Held is closed when a held stream is waiting (see HoldStreamAfter).
	Held chan struct{}

	opts     Options
	holdOnce sync.Once

	mu       sync.Mutex
	calls    int
	attempts int
	metadata []metadata.MD
}

// Start runs a server on a loopback port until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &Server{Addr: lis.Addr().String(), Health: health.NewServer(), Held: make(chan struct{}), opts: opts}
	serverOpts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.recordUnary),
		grpc.ChainStreamInterceptor(s.recordStream),
	}
	if opts.TLS != nil {
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(opts.TLS)))
	}
	srv := grpc.NewServer(serverOpts...)
	greeterv1.RegisterGreeterServiceServer(srv, &greeter{s: s})
	helloworld.RegisterGreeterServer(srv, &classic{s: s})
	healthpb.RegisterHealthServer(srv, s.Health)
	for _, name := range []string{"acme.greeter.v1.GreeterService", "helloworld.Greeter"} {
		s.Health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() {
		// Stop rather than GracefulStop: a test may leave a watch open.
		srv.Stop()
	})
	return s
}

// Calls returns how many calls succeeded or failed in a handler, retries
// included.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Metadata returns the request metadata of every call so far.
func (s *Server) Metadata() []metadata.MD {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]metadata.MD(nil), s.metadata...)
}

func (s *Server) record(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.metadata = append(s.metadata, md)
}

func (s *Server) recordUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	s.record(ctx)
	if info.FullMethod == healthpb.Health_Check_FullMethodName && s.opts.Version != "" {
		if err := grpc.SetHeader(ctx, metadata.Pairs(VersionHeader, s.opts.Version)); err != nil {
			return nil, err
		}
	}
	if !strings.HasPrefix(info.FullMethod, "/grpc.health") {
		s.mu.Lock()
		s.attempts++
		fail := s.attempts <= s.opts.FailUnary
		s.mu.Unlock()
		if fail {
			return nil, status.Error(codes.Unavailable, "test server: failing this attempt on purpose")
		}
	}
	return handler(ctx, req)
}

func (s *Server) recordStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	s.record(ss.Context())
	return handler(srv, ss)
}

// validate applies the name rules of the contract the way the real server
// reports them: InvalidArgument with a BadRequest detail.
func validate(name string) error {
	if code, ok := strings.CutPrefix(name, CodePrefix); ok {
		for c := codes.OK; c <= codes.Unauthenticated; c++ {
			if c.String() == code {
				return status.Error(c, "test server: failing with "+code+" on purpose")
			}
		}
		return status.Errorf(codes.Internal, "test server: unknown code %q", code)
	}
	if name == Details {
		st, err := status.New(codes.InvalidArgument, "request is invalid").WithDetails(
			&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
				{Field: "name", Description: "must contain a character that is not white space"},
				{Field: "name", Description: "must not contain control characters", Reason: "name.no_control_characters"},
			}},
			&errdetails.ErrorInfo{Reason: "NAME_INVALID", Domain: "greeter.acme.com", Metadata: map[string]string{"b": "2", "a": "1"}},
			&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)},
			&errdetails.DebugInfo{Detail: "validator said no", StackEntries: []string{"goroutine 1 [running]:", "main.secret()"}},
			&errdetails.Help{Links: []*errdetails.Help_Link{{Description: "name rules", Url: "https://example.com/names"}}},
			&errdetails.LocalizedMessage{Locale: "fr-FR", Message: "nom invalide"},
			&errdetails.RequestInfo{RequestId: "req-42"},
		)
		if err != nil {
			return err
		}
		return st.Err()
	}
	var violation, rule string
	switch {
	case name == "":
		violation, rule = "value is required", "required"
	case strings.TrimSpace(name) == "":
		violation, rule = "must contain a character that is not white space", "name.not_blank"
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		violation, rule = "must not contain control characters", "name.no_control_characters"
	default:
		return nil
	}
	// Like the real server: a BadRequest for every client, and the same
	// violation as protovalidate reports it for clients that know it.
	st, err := status.New(codes.InvalidArgument, "validation error: name: "+violation).WithDetails(
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "name", Description: violation, Reason: rule},
		}},
		&validatepb.Violations{Violations: []*validatepb.Violation{{
			Field:   &validatepb.FieldPath{Elements: []*validatepb.FieldPathElement{{FieldNumber: proto.Int32(1), FieldName: proto.String("name")}}},
			RuleId:  proto.String(rule),
			Message: proto.String(violation),
		}}},
	)
	if err != nil {
		return err
	}
	return st.Err()
}

type greeter struct {
	greeterv1.UnimplementedGreeterServiceServer
	s *Server
}

func (g *greeter) SayHello(ctx context.Context, req *greeterv1.SayHelloRequest) (*greeterv1.SayHelloResponse, error) {
	if err := validate(req.GetName()); err != nil {
		return nil, err
	}
	return &greeterv1.SayHelloResponse{Message: "Hello, " + strings.TrimSpace(req.GetName()) + "!"}, nil
}

func (g *greeter) SayHelloAgain(ctx context.Context, req *greeterv1.SayHelloAgainRequest) (*greeterv1.SayHelloAgainResponse, error) {
	if err := validate(req.GetName()); err != nil {
		return nil, err
	}
	return &greeterv1.SayHelloAgainResponse{Message: "Hello again, " + strings.TrimSpace(req.GetName()) + "!"}, nil
}

func (g *greeter) SayHelloStream(req *greeterv1.SayHelloStreamRequest, stream grpc.ServerStreamingServer[greeterv1.SayHelloStreamResponse]) error {
	if err := validate(req.GetName()); err != nil {
		return err
	}
	if req.GetCount() < 1 || req.GetCount() > 10000 {
		st, _ := status.New(codes.InvalidArgument, "invalid request").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "count", Description: "value must be greater than or equal to 1 and less than or equal to 10000"}},
		})
		return st.Err()
	}
	for i := int32(1); i <= req.GetCount(); i++ {
		if g.s.opts.HoldStreamAfter > 0 && int(i) > g.s.opts.HoldStreamAfter {
			g.s.holdOnce.Do(func() { close(g.s.Held) })
			<-stream.Context().Done()
			return status.FromContextError(stream.Context().Err()).Err()
		}
		if i > 1 && req.GetInterval().AsDuration() > 0 {
			select {
			case <-time.After(req.GetInterval().AsDuration()):
			case <-stream.Context().Done():
				return status.FromContextError(stream.Context().Err()).Err()
			}
		}
		res := &greeterv1.SayHelloStreamResponse{Message: "Hello, " + strings.TrimSpace(req.GetName()) + "!", Sequence: i}
		if err := stream.Send(res); err != nil {
			return err
		}
	}
	return nil
}

func (g *greeter) SayHelloToAll(stream grpc.ClientStreamingServer[greeterv1.SayHelloToAllRequest, greeterv1.SayHelloToAllResponse]) error {
	var names []string
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := validate(req.GetName()); err != nil {
			return err
		}
		names = append(names, strings.TrimSpace(req.GetName()))
	}
	if len(names) == 0 {
		return status.Error(codes.InvalidArgument, "no names: send at least one")
	}
	msg := "Hello, " + names[0] + "!"
	if n := len(names); n > 1 {
		msg = fmt.Sprintf("Hello, %s and %s!", strings.Join(names[:n-1], ", "), names[n-1])
	}
	return stream.SendAndClose(&greeterv1.SayHelloToAllResponse{Message: msg, Count: int64(len(names))})
}

func (g *greeter) SayHelloChat(stream grpc.BidiStreamingServer[greeterv1.SayHelloChatRequest, greeterv1.SayHelloChatResponse]) error {
	for seq := int64(1); ; seq++ {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := validate(req.GetName()); err != nil {
			return err
		}
		if err := stream.Send(&greeterv1.SayHelloChatResponse{Message: "Hello, " + strings.TrimSpace(req.GetName()) + "!", Sequence: seq}); err != nil {
			return err
		}
	}
}

type classic struct {
	helloworld.UnimplementedGreeterServer
	s *Server
}

func (c *classic) SayHello(ctx context.Context, req *helloworld.HelloRequest) (*helloworld.HelloReply, error) {
	return &helloworld.HelloReply{Message: "Hello " + req.GetName()}, nil
}

func (c *classic) SayHelloAgain(ctx context.Context, req *helloworld.HelloRequest) (*helloworld.HelloReply, error) {
	return &helloworld.HelloReply{Message: "Hello again " + req.GetName()}, nil
}
