package interceptors

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestSlogAdapterLevels(t *testing.T) {
	tests := []struct {
		desc    string
		min     slog.Level
		level   logging.Level
		service string
		want    string // "" when nothing is logged
	}{
		{"info access line", slog.LevelInfo, logging.LevelInfo, "acme.greeter.v1.GreeterService", "level=INFO"},
		{"below the configured level", slog.LevelWarn, logging.LevelInfo, "acme.greeter.v1.GreeterService", ""},
		{"health at info is lowered to debug", slog.LevelInfo, logging.LevelInfo, "grpc.health.v1.Health", ""},
		{"health at debug", slog.LevelDebug, logging.LevelInfo, "grpc.health.v1.Health", "level=DEBUG"},
		{"health failures keep their level", slog.LevelInfo, logging.LevelError, "grpc.health.v1.Health", "level=ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			var buf bytes.Buffer
			l := slogAdapter(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.min})))
			l.Log(context.Background(), tt.level, "finished call", logging.ServiceFieldKey, tt.service, "grpc.code", "OK")
			got := buf.String()
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Fatalf("logged %q, want %q", got, tt.want)
			}
		})
	}
}

type counter struct{ n int }

// ctxStream is a server stream with only a context, all recovery reads.
type ctxStream struct{ grpc.ServerStream }

func (ctxStream) Context() context.Context { return context.Background() }

func (c *counter) Inc() { c.n++ }

func TestRecovery(t *testing.T) {
	var buf bytes.Buffer
	var panics counter
	unary, stream := Recovery(slog.New(slog.NewTextHandler(&buf, nil)), &panics)

	_, err := unary(context.Background(), nil, &grpc.UnaryServerInfo{}, func(context.Context, any) (any, error) {
		panic("secret detail")
	})
	if st := status.Convert(err); st.Code() != codes.Internal || strings.Contains(st.Message(), "secret") {
		t.Fatalf("unary panic: %v, want Internal without the panic value", err)
	}
	err = stream(nil, ctxStream{}, &grpc.StreamServerInfo{}, func(any, grpc.ServerStream) error { panic("again") })
	if status.Code(err) != codes.Internal {
		t.Fatalf("stream panic: %v, want Internal", err)
	}
	if panics.n != 2 {
		t.Errorf("counted %d panics, want 2", panics.n)
	}
	if !strings.Contains(buf.String(), "panic=\"secret detail\"") || !strings.Contains(buf.String(), "TestRecovery") {
		t.Errorf("log lacks the panic value or the stack: %s", buf.String())
	}
}
