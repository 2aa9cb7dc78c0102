package tlsreload

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/acme/greeter/services/greeter/internal/testpki"
)

// handshake runs one TLS handshake over an in-memory pipe and returns the
// certificate the server presented, or the client's handshake error.
func handshake(t *testing.T, server *tls.Config, client *tls.Config) (*x509.Certificate, error) {
	t.Helper()
	sc, cc := net.Pipe()
	t.Cleanup(func() { sc.Close(); cc.Close() })
	serverDone := make(chan error, 1)
	go func() {
		s := tls.Server(sc, server)
		err := s.Handshake()
		if err == nil {
			// One byte tells the client the server accepted it: with TLS
			// 1.3 the client finishes its handshake before the server has
			// checked the client certificate.
			_, err = s.Write([]byte("x"))
		}
		sc.Close()
		serverDone <- err
	}()
	c := tls.Client(cc, client)
	err := c.Handshake()
	if err == nil {
		_, err = io.ReadFull(c, make([]byte, 1))
	}
	cc.Close()
	<-serverDone
	if err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestReloadOnChange(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	first := ca.Server(t, "first")
	certFile, keyFile := first.WriteFiles(t, dir, "server")

	r, err := New(certFile, keyFile, WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}

	got, err := handshake(t, r.ServerConfig(), client)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject.CommonName != "first" {
		t.Fatalf("served %q, want first", got.Subject.CommonName)
	}

	// Rotate. Pushing the modification time forward makes the change
	// visible even on file systems with coarse timestamps.
	second := ca.Server(t, "second")
	second.WriteFiles(t, dir, "server")
	future := time.Now().Add(time.Minute)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, future, future); err != nil {
			t.Fatal(err)
		}
	}
	got, err = handshake(t, r.ServerConfig(), client)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject.CommonName != "second" {
		t.Fatalf("after rotation served %q, want second", got.Subject.CommonName)
	}

	// A broken rotation (key no longer matches) keeps the last good pair.
	if err := os.WriteFile(keyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = handshake(t, r.ServerConfig(), client)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject.CommonName != "second" {
		t.Fatalf("after broken rotation served %q, want second", got.Subject.CommonName)
	}
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	certFile, keyFile := ca.Server(t, "server").WriteFiles(t, dir, "server")
	clientCAFile := filepath.Join(dir, "clients.pem")
	if err := os.WriteFile(clientCAFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := New(certFile, keyFile, WithClientCA(clientCAFile), WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	other := testpki.NewCA(t, "untrusted CA")

	tests := []struct {
		name    string
		certs   []tls.Certificate
		wantErr bool
	}{
		{"trusted client", []tls.Certificate{ca.Client(t, "alice").TLS(t)}, false},
		{"no client certificate", nil, true},
		{"client signed by another CA", []tls.Certificate{other.Client(t, "mallory").TLS(t)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := handshake(t, r.ServerConfig(), &tls.Config{
				RootCAs: ca.Pool(), ServerName: "localhost", Certificates: tt.certs,
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("handshake error = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	certFile, keyFile := ca.Server(t, "server").WriteFiles(t, dir, "server")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		cert, key, ca string
	}{
		{"missing cert", filepath.Join(dir, "nope.crt"), keyFile, ""},
		{"key is not a key", certFile, notPEM, ""},
		{"client CA without certificates", certFile, keyFile, notPEM},
		{"missing client CA", certFile, keyFile, filepath.Join(dir, "nope.pem")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cert, tt.key, WithClientCA(tt.ca), WithLogger(quiet())); err == nil {
				t.Fatal("New succeeded, want error")
			}
		})
	}
}
