package server

import (
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/acme/greeter/services/greeter/internal/testpki"
	"github.com/acme/greeter/services/greeter/internal/tlsreload"
)

func TestTLS(t *testing.T) {
	ca, certFile, keyFile, caFile := pkiFiles(t)
	plainTLS, err := tlsreload.New(certFile, keyFile, tlsreload.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	mutualTLS, err := tlsreload.New(certFile, keyFile, tlsreload.WithClientCA(caFile), tlsreload.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	other := testpki.NewCA(t, "other CA")
	clientTLS := func(certs ...tls.Certificate) credentials.TransportCredentials {
		return credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: certs})
	}

	tests := []struct {
		desc     string
		server   *tls.Config
		client   credentials.TransportCredentials
		wantCode codes.Code
	}{
		{"TLS", plainTLS.ServerConfig(), clientTLS(), codes.OK},
		{"TLS, plaintext client", plainTLS.ServerConfig(), insecure.NewCredentials(), codes.Unavailable},
		{"TLS, client distrusts the server", plainTLS.ServerConfig(),
			credentials.NewTLS(&tls.Config{RootCAs: other.Pool(), ServerName: "localhost"}), codes.Unavailable},
		{"mTLS", mutualTLS.ServerConfig(), clientTLS(ca.Client(t, "alice").TLS(t)), codes.OK},
		{"mTLS, no client certificate", mutualTLS.ServerConfig(), clientTLS(), codes.Unavailable},
		{"mTLS, untrusted client certificate", mutualTLS.ServerConfig(), clientTLS(other.Client(t, "mallory").TLS(t)), codes.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			h := start(t, withOptions(WithTLS(tt.server)), withClientCreds(tt.client))
			resp, err := h.greeter.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "Ada"})
			if status.Code(err) != tt.wantCode {
				t.Fatalf("SayHello: %v, want %v", err, tt.wantCode)
			}
			if err == nil && resp.GetMessage() != "Hello, Ada!" {
				t.Fatalf("greeting %q", resp.GetMessage())
			}
		})
	}
}

// pkiFiles makes a test CA and writes the server's certificate, its key
// and the CA's certificate (for mutual TLS) to files, as the TLS flags name
// them.
func pkiFiles(t *testing.T) (ca *testpki.CA, certFile, keyFile, caFile string) {
	t.Helper()
	dir := t.TempDir()
	ca = testpki.NewCA(t, "test CA")
	certFile, keyFile = ca.Server(t, "greeter").WriteFiles(t, dir, "server")
	caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return ca, certFile, keyFile, caFile
}
