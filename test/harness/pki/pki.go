// Package pki is the end-to-end tests' throwaway certificate authority:
// PEM files in a directory, for servers and clients started as processes.
//
// The server and greetctl modules keep test PKIs of their own
// (services/greeter/internal/testpki, clients/greetctl/internal/greettest):
// shipped modules cannot depend on this never-released module, nor on each
// other, and a shared module just for test certificates would add a
// dependency to both release cycles.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CA is a certificate authority whose certificate is the PEM file Cert.
type CA struct {
	// Dir is where the CA writes the files it issues.
	Dir string
	// Cert is the CA certificate's file.
	Cert string

	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// validity is how long around now every certificate is valid: an hour back,
// for clocks a little apart, and a day ahead.
const validityBack, validityAhead = time.Hour, 24 * time.Hour

// NewCA creates a CA named cn in dir.
func NewCA(dir, cn string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-validityBack),
		NotAfter:              time.Now().Add(validityAhead),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &CA{Dir: dir, Cert: filepath.Join(dir, fileName(cn)+"-ca.pem"), cert: cert, key: key}
	return ca, writePEM(ca.Cert, "CERTIFICATE", der)
}

// Server issues a server certificate for cn, valid for localhost and
// 127.0.0.1, and returns its certificate and key files.
func (ca *CA) Server(cn string) (certFile, keyFile string, err error) {
	return issue(ca.Dir, cn, true, ca.cert, ca.key)
}

// Client issues a client certificate for cn and returns its certificate and
// key files.
func (ca *CA) Client(cn string) (certFile, keyFile string, err error) {
	return issue(ca.Dir, cn, false, ca.cert, ca.key)
}

// SelfSigned writes a client certificate for cn signed by its own key into
// dir: one no CA vouches for.
func SelfSigned(dir, cn string) (certFile, keyFile string, err error) {
	return issue(dir, cn, false, nil, nil)
}

func issue(dir, cn string, server bool, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-validityBack),
		NotAfter:     time.Now().Add(validityAhead),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	parent, signer := ca, caKey
	if ca == nil {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile := filepath.Join(dir, fileName(cn)+".pem"), filepath.Join(dir, fileName(cn)+"-key.pem")
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return "", "", err
	}
	return certFile, keyFile, writePEM(keyFile, "PRIVATE KEY", keyDER)
}

// serial is a random 128-bit serial number, as RFC 5280 asks: two
// certificates issued in the same instant must still differ.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func fileName(cn string) string { return strings.ReplaceAll(cn, " ", "_") }

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
