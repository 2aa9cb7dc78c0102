// Package tlsreload serves TLS certificates that can be replaced on disk
// without restarting the server: certificate rotation (cert-manager, Vault,
// a cron'd ACME client) only has to write new files.
package tlsreload

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Reloader holds the server certificate and, for mutual TLS, the client CA
// pool, and re-reads them when their files change. Changes are noticed on the
// next TLS handshake, by comparing each file's modification time and size
// with those of the last successful load: handshakes happen per connection,
// not per RPC, so the three stat calls are cheap.
type Reloader struct {
	certFile, keyFile, clientCAFile string
	logger                          *slog.Logger

	mu     sync.Mutex
	stamps [3]stamp // of certFile, keyFile, clientCAFile at the last load
	config *tls.Config
}

type stamp struct {
	mod  time.Time
	size int64
}

// Option configures a Reloader.
type Option func(*Reloader)

// WithClientCA requires clients to present a certificate signed by a CA in
// file (PEM), which is reloaded like the server certificate.
func WithClientCA(file string) Option {
	return func(r *Reloader) { r.clientCAFile = file }
}

// WithLogger sets where failed reloads are reported.
func WithLogger(l *slog.Logger) Option {
	return func(r *Reloader) { r.logger = l }
}

// New loads the certificate and key (PEM files) and returns a Reloader. A
// load error here is fatal; later, a failed reload keeps serving the last
// good certificate and is retried on the next handshake, so a rotation that
// writes the certificate and the key one after the other heals itself.
func New(certFile, keyFile string, opts ...Option) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile, logger: slog.Default()}
	for _, o := range opts {
		o(r)
	}
	stamps, err := r.stat()
	if err != nil {
		return nil, err
	}
	if err := r.load(stamps); err != nil {
		return nil, err
	}
	return r, nil
}

// ServerConfig returns the TLS configuration for a server: every handshake
// gets the current certificate and client CA pool.
func (r *Reloader) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetConfigForClient: r.configForClient,
	}
}

func (r *Reloader) configForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if stamps, err := r.stat(); err != nil {
		r.logger.Warn("TLS files unreadable, keeping the loaded certificate", "error", err)
	} else if stamps != r.stamps {
		if err := r.load(stamps); err != nil {
			r.logger.Warn("TLS reload failed, keeping the loaded certificate", "error", err)
		} else {
			r.logger.Info("TLS certificate reloaded", "cert", r.certFile, "client_ca", r.clientCAFile)
		}
	}
	return r.config, nil
}

func (r *Reloader) stat() ([3]stamp, error) {
	var stamps [3]stamp
	for i, f := range []string{r.certFile, r.keyFile, r.clientCAFile} {
		if f == "" {
			continue
		}
		fi, err := os.Stat(f)
		if err != nil {
			return stamps, fmt.Errorf("stat TLS file: %w", err)
		}
		stamps[i] = stamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return stamps, nil
}

// load builds a new configuration; callers hold r.mu (or own r exclusively).
func (r *Reloader) load(stamps [3]stamp) error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS key pair %s, %s: %w", r.certFile, r.keyFile, err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// gRPC needs ALPN h2; set it here because this config, not the
		// one given to grpc/credentials, is the one used for the handshake.
		NextProtos: []string{"h2"},
	}
	if r.clientCAFile != "" {
		pem, err := os.ReadFile(r.clientCAFile)
		if err != nil {
			return fmt.Errorf("read client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return errors.New("client CA " + r.clientCAFile + ": no PEM certificate found")
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	r.config = cfg
	r.stamps = stamps
	return nil
}
