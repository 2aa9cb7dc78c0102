package conformance

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	conformancev1 "github.com/acme/greeter/services/greeter/internal/conformance/gen/connectrpc/conformance/v1"
)

func TestFraming(t *testing.T) {
	want := &conformancev1.ServerCompatRequest{Protocol: conformancev1.Protocol_PROTOCOL_GRPC, MessageReceiveLimit: 1024}
	data, err := proto.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	binary.Write(&in, binary.BigEndian, uint32(len(data)))
	in.Write(data)
	got, err := ReadRequest(&in)
	if err != nil || !proto.Equal(got, want) {
		t.Fatalf("ReadRequest = %v, %v; want %v", got, err, want)
	}

	var out bytes.Buffer
	if err := WriteResponse(&out, &conformancev1.ServerCompatResponse{Host: "127.0.0.1", Port: 4242}); err != nil {
		t.Fatal(err)
	}
	if size := binary.BigEndian.Uint32(out.Bytes()); int(size) != out.Len()-4 {
		t.Errorf("size prefix %d for a %d-byte message", size, out.Len()-4)
	}

	for name, input := range map[string][]byte{
		"empty":          nil,
		"size cut short": {0, 0},
		"body cut short": {0, 0, 0, 9, 1},
		"oversized":      {0xff, 0xff, 0xff, 0xff},
		"not a message":  {0, 0, 0, 1, 0xff},
	} {
		if _, err := ReadRequest(bytes.NewReader(input)); err == nil {
			t.Errorf("%s: ReadRequest accepted it", name)
		}
	}
}

func TestOptions(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	opts, err := Options(&conformancev1.ServerCompatRequest{MessageReceiveLimit: 1024}, t.TempDir(), logger)
	if err != nil || len(opts) != 1 {
		t.Errorf("a receive limit, no TLS: %d options, %v; want the limit alone", len(opts), err)
	}
	opts, err = Options(&conformancev1.ServerCompatRequest{}, t.TempDir(), logger)
	if err != nil || len(opts) != 0 {
		t.Errorf("nothing asked: %d options, %v; want none", len(opts), err)
	}
	for name, req := range map[string]*conformancev1.ServerCompatRequest{
		"TLS without credentials":      {UseTls: true},
		"client certificates, no TLS":  {ClientTlsCert: []byte("x")},
		"a certificate that is no PEM": {UseTls: true, ServerCreds: &conformancev1.TLSCreds{Cert: []byte("x"), Key: []byte("y")}},
	} {
		if _, err := Options(req, t.TempDir(), logger); err == nil || strings.TrimSpace(err.Error()) == "" {
			t.Errorf("%s: accepted", name)
		}
	}
}
