// Package dial opens the client connection greetctl commands share:
// target resolution, transport security, load balancing and retries.
package dial

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/acme/greeter/clients/greetctl/internal/exitcode"
	"github.com/acme/greeter/clients/greetctl/internal/flagname"
)

// Options configures a connection.
type Options struct {
	// Addr is the --addr value, see AddrFormats.
	Addr string
	// Plaintext disables TLS even for a remote address.
	Plaintext bool
	// TLS forces TLS even for a loopback address.
	TLS bool
	// CA is a PEM file of the roots that verify the server, instead of the
	// system roots.
	CA string
	// Cert and Key are the PEM client certificate and key for mutual TLS.
	Cert, Key string
	// ServerName overrides the name the server certificate is verified
	// against.
	ServerName string
	// InsecureSkipVerify accepts any server certificate.
	InsecureSkipVerify bool
	// UserAgent prefixes gRPC's own user agent.
	UserAgent string
	// NoRetry disables retries.
	NoRetry bool
	// WaitForReady makes calls wait for a connection, up to their
	// deadline, instead of failing with UNAVAILABLE while there is none.
	WaitForReady bool
	// Warnings receives security warnings; nil discards them.
	Warnings io.Writer
	// DialOptions are appended, e.g. interceptors.
	DialOptions []grpc.DialOption
}

// usesTLS decides the transport: TLS unless --plaintext, or a loopback
// address with no TLS flag at all, because a greeting sent in clear over a
// network is a mistake nobody should make by default.
func (o Options) usesTLS(t Target) (bool, error) {
	tlsFlags := o.TLS || o.CA != "" || o.Cert != "" || o.Key != "" || o.ServerName != "" || o.InsecureSkipVerify
	switch {
	case o.Plaintext && tlsFlags:
		return false, exitcode.Usagef("%s conflicts with %s, %s, %s, %s, %s and %s", flagname.Plaintext,
			flagname.TLS, flagname.CA, flagname.Cert, flagname.Key, flagname.ServerName, flagname.InsecureSkipVerify)
	case o.Plaintext:
		return false, nil
	case tlsFlags:
		return true, nil
	default:
		return !t.Loopback, nil
	}
}

// New returns a client for o.Addr. Like grpc.NewClient it does not connect:
// the first call does.
func New(o Options) (*grpc.ClientConn, error) {
	target, err := ParseTarget(o.Addr)
	if err != nil {
		return nil, exitcode.Usagef("%s: %w", flagname.Addr, err)
	}
	useTLS, err := o.usesTLS(target)
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if useTLS {
		cfg, err := o.tlsConfig()
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(ServiceConfig(!o.NoRetry)),
	}
	if o.NoRetry {
		// A service config from the resolver (DNS TXT records) may carry
		// its own retry policy; --no-retry must win over it too.
		opts = append(opts, grpc.WithDisableRetry())
	}
	if o.WaitForReady {
		opts = append(opts, grpc.WithDefaultCallOptions(grpc.WaitForReady(true)))
	}
	if o.UserAgent != "" {
		opts = append(opts, grpc.WithUserAgent(o.UserAgent))
	}
	if target.resolver != nil {
		opts = append(opts, grpc.WithResolvers(target.resolver))
	}
	opts = append(opts, o.DialOptions...)
	conn, err := grpc.NewClient(target.URI, opts...)
	if err != nil {
		return nil, exitcode.Usagef("%s %q: %w", flagname.Addr, o.Addr, err)
	}
	return conn, nil
}

func (o Options) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         o.ServerName,
		InsecureSkipVerify: o.InsecureSkipVerify, //nolint:gosec // Opt-in, with a warning.
	}
	if o.InsecureSkipVerify && o.Warnings != nil {
		fmt.Fprintf(o.Warnings, "WARNING: %s: the server's certificate is NOT verified.\n"+
			"WARNING: anyone on the network path can impersonate the server and read this traffic. Use it only for testing.\n",
			flagname.InsecureSkipVerify)
	}
	if o.CA != "" {
		pem, err := os.ReadFile(o.CA)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flagname.CA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate found in %s", flagname.CA, o.CA)
		}
		cfg.RootCAs = pool
	}
	switch {
	case o.Cert != "" && o.Key != "":
		pair, err := tls.LoadX509KeyPair(o.Cert, o.Key)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", flagname.Cert, flagname.Key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	case o.Cert != "" || o.Key != "":
		return nil, exitcode.Usagef("%s and %s go together: give both for mutual TLS", flagname.Cert, flagname.Key)
	}
	return cfg, nil
}

// ServiceConfig returns the default service config: round_robin over every
// resolved address and, if retry, up to 4 attempts of the idempotent unary
// calls (SayHello, SayHelloAgain of both contracts and health Check) that
// fail with UNAVAILABLE, backing off from 100ms to 1s. Streaming calls are
// not retried: a stream that failed half way cannot be resumed.
func ServiceConfig(retry bool) string {
	if !retry {
		return `{"loadBalancingConfig":[{"round_robin":{}}]}`
	}
	return `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [
      {"service": "acme.greeter.v1.GreeterService", "method": "SayHello"},
      {"service": "acme.greeter.v1.GreeterService", "method": "SayHelloAgain"},
      {"service": "helloworld.Greeter", "method": "SayHello"},
      {"service": "helloworld.Greeter", "method": "SayHelloAgain"},
      {"service": "grpc.health.v1.Health", "method": "Check"}
    ],
    "retryPolicy": {
      "maxAttempts": 4,
      "initialBackoff": "0.1s",
      "maxBackoff": "1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`
}
