// Package conformance serves connectrpc's conformance suite
// (connectrpc.com/conformance) from the greeter's own server, so that the
// suite's runner proves both ports speak Connect, gRPC-Web and gRPC as the
// specifications say: Service is the suite's ConformanceService, added to
// server.New with server.WithService, the one seam the server has for it;
// the rest of this package is the suite's stdin/stdout protocol and the
// translation of its requests (TLS, client certificates, a message receive
// limit) into what a deployment configures. cmd/conformanceserver is the
// program the runner starts.
//
// It lives in the server's module, under internal/, because it must build
// the server exactly as the greeter binary does (package server's
// construction, package config's settings, package tlsreload's TLS), and
// those packages are internal to this module: the test module could only
// reach them through an exported copy of the server's API, or by requiring
// this module, which would link the test module's dependencies into the
// server under test. Here it builds in the shipped workspace with the
// versions the greeter ships with. The suite's own Go code is internal to its
// module; the protos are generated here (buf.gen.conformance.yaml, from the
// version test/go.mod pins for the runner). The runner, its configurations
// and the test that runs it are in test/conformance.
package conformance

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	conformancev1 "github.com/acme/greeter/services/greeter/internal/conformance/gen/connectrpc/conformance/v1"
	"github.com/acme/greeter/services/greeter/internal/server"
	"github.com/acme/greeter/services/greeter/internal/tlsreload"
)

// maxRequestSize bounds the ServerCompatRequest read from the runner: a few
// certificates.
const maxRequestSize = 1 << 20

// ReadRequest reads the runner's ServerCompatRequest: a 32-bit big-endian
// size, then the message.
func ReadRequest(r io.Reader) (*conformancev1.ServerCompatRequest, error) {
	var size uint32
	if err := binary.Read(r, binary.BigEndian, &size); err != nil {
		return nil, fmt.Errorf("read the request's size: %w", err)
	}
	if size > maxRequestSize {
		return nil, fmt.Errorf("request of %d bytes, more than the %d expected", size, maxRequestSize)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, fmt.Errorf("read the request: %w", err)
	}
	req := &conformancev1.ServerCompatRequest{}
	if err := proto.Unmarshal(data, req); err != nil {
		return nil, fmt.Errorf("decode the request: %w", err)
	}
	return req, nil
}

// WriteResponse writes resp for the runner, framed as ReadRequest reads.
func WriteResponse(w io.Writer, resp *conformancev1.ServerCompatResponse) error {
	data, err := proto.Marshal(resp)
	if err != nil {
		return err
	}
	if err := binary.Write(w, binary.BigEndian, uint32(len(data))); err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// Options are the server options req asks for beyond the deployment's: TLS
// with the runner's certificate, and client certificates when it sends one,
// loaded from files in dir by package tlsreload as the greeter's --tls-cert,
// --tls-key and --tls-client-ca are; and its message receive limit, as
// --max-recv-msg-size. An option req does not ask for is left out, so the
// deployment's setting stands.
func Options(req *conformancev1.ServerCompatRequest, dir string, logger *slog.Logger) ([]server.Option, error) {
	var opts []server.Option
	if n := req.GetMessageReceiveLimit(); n > 0 {
		opts = append(opts, server.WithMaxRecvMsgSize(int(n)))
	}
	if !req.GetUseTls() {
		if len(req.GetClientTlsCert()) > 0 {
			return nil, fmt.Errorf("client certificates asked for without TLS")
		}
		return opts, nil
	}
	creds := req.GetServerCreds()
	if len(creds.GetCert()) == 0 || len(creds.GetKey()) == 0 {
		return nil, fmt.Errorf("TLS asked for without the server's certificate and key")
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, creds.GetCert(), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, creds.GetKey(), 0o600); err != nil {
		return nil, err
	}
	tlsOpts := []tlsreload.Option{tlsreload.WithLogger(logger)}
	if ca := req.GetClientTlsCert(); len(ca) > 0 {
		// The runner's clients present this certificate, self-signed: it is
		// the CA that signed itself.
		caFile := filepath.Join(dir, "client-ca.crt")
		if err := os.WriteFile(caFile, ca, 0o600); err != nil {
			return nil, err
		}
		tlsOpts = append(tlsOpts, tlsreload.WithClientCA(caFile))
	}
	reloader, err := tlsreload.New(certFile, keyFile, tlsOpts...)
	if err != nil {
		return nil, err
	}
	return append(opts, server.WithTLS(reloader.ServerConfig())), nil
}
