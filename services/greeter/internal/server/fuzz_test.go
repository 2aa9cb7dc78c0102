package server

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"github.com/acme/greeter/gen/go/helloworld"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/acme/greeter/services/greeter/internal/greeting"
	"github.com/acme/greeter/services/greeter/internal/validate"
)

// The fuzzers below drive the whole server over bufconn (codec,
// interceptors, validation, handlers) with raw wire bytes, and check every
// answer against an expectation computed locally: proto.Unmarshal, the
// validator, and package greeting. One server serves all the inputs of a
// fuzzer, so a crash or leak in one input shows up in the next.

func fuzzValidator(f *testing.F) *validate.Validator {
	v, err := validate.New()
	if err != nil {
		f.Fatal(err)
	}
	return v
}

// expectCode is what the server must answer for a request that decodes
// into msg (or not, decodeErr) and has name as the name to validate.
func expectCode(v *validate.Validator, decodeErr error, check proto.Message) codes.Code {
	if decodeErr != nil {
		return codes.InvalidArgument
	}
	return status.Code(v.Check(check))
}

var fuzzSeeds = [][]byte{
	wire(nil).str(1, "Ada"),
	wire(nil).str(1, " Grace\u00a0"),
	wire(nil).str(1, ""),
	wire(nil).str(1, "Ad\xffa"),
	wire(nil).str(1, "Ada\x00"),
	wire(nil).str(1, strings.Repeat("ж", 101)),
	{0x0a, 0x05, 'A'},
	wire(nil).str(1, "Ada").varint(99, 1),
	wire(nil).str(1, "Ada").varint(2, 3).msg(3, duration(0, 1000)),
	wire(nil).str(1, "Ada").varint(2, 0),
	wire(nil).str(1, "Ada").varint(2, 2).msg(3, duration(-1, 0)),
	wire(nil).str(1, "Ada").varint(2, 2).msg(3, wire{0x08}),
}

// FuzzSayHello sends the input as the request of each unary RPC of both
// contracts.
func FuzzSayHello(f *testing.F) {
	h := start(f)
	v := fuzzValidator(f)
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	type unary struct {
		method string
		req    func() proto.Message
		check  func(proto.Message) proto.Message // the message validation sees
		greet  func(string) string
		name   func(proto.Message) string
	}
	v1Name := func(m proto.Message) string {
		return m.ProtoReflect().Get(m.ProtoReflect().Descriptor().Fields().ByNumber(1)).String()
	}
	same := func(m proto.Message) proto.Message { return m }
	classic := func(m proto.Message) proto.Message {
		return &greeterv1.SayHelloRequest{Name: m.(*helloworld.HelloRequest).GetName()}
	}
	rpcs := []unary{
		{"/acme.greeter.v1.GreeterService/SayHello", func() proto.Message { return &greeterv1.SayHelloRequest{} }, same, greeting.Hello, v1Name},
		{"/acme.greeter.v1.GreeterService/SayHelloAgain", func() proto.Message { return &greeterv1.SayHelloAgainRequest{} }, same, greeting.HelloAgain, v1Name},
		{"/helloworld.Greeter/SayHello", func() proto.Message { return &helloworld.HelloRequest{} }, classic, greeting.Hello, v1Name},
		{"/helloworld.Greeter/SayHelloAgain", func() proto.Message { return &helloworld.HelloRequest{} }, classic, greeting.HelloAgain, v1Name},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, rpc := range rpcs {
			req := rpc.req()
			decodeErr := proto.Unmarshal(data, req)
			want := expectCode(v, decodeErr, rpc.check(req))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			var reply []byte
			err := h.conn.Invoke(ctx, rpc.method, &data, &reply, grpc.ForceCodec(rawCodec{}))
			cancel()
			if got := status.Code(err); got != want {
				t.Fatalf("%s %x: %v, want %v", rpc.method, data, err, want)
			}
			if err != nil {
				continue
			}
			var resp greeterv1.SayHelloResponse // same shape as every unary reply
			if err := proto.Unmarshal(reply, &resp); err != nil {
				t.Fatal(err)
			}
			if w := rpc.greet(rpc.name(req)); resp.GetMessage() != w {
				t.Fatalf("%s: %q, want %q", rpc.method, resp.GetMessage(), w)
			}
		}
	})
}

// FuzzSayHelloStream sends the input as a SayHelloStream request and checks
// the status and, when valid, every greeting and its sequence number.
// Requests that would take long (interval × count over 50ms) are skipped:
// the deadline is not what is fuzzed here.
func FuzzSayHelloStream(f *testing.F) {
	h := start(f)
	v := fuzzValidator(f)
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req greeterv1.SayHelloStreamRequest
		decodeErr := proto.Unmarshal(data, &req)
		want := expectCode(v, decodeErr, &req)
		if want == codes.OK && req.GetInterval().AsDuration()*time.Duration(req.GetCount()-1) > 50*time.Millisecond {
			t.Skip("slow by design")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stream, err := h.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/acme.greeter.v1.GreeterService/SayHelloStream", grpc.ForceCodec(rawCodec{}))
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.SendMsg(&data); err != nil {
			t.Fatal(err)
		}
		_ = stream.CloseSend()
		greet := greeting.Hello(req.GetName())
		var n int32
		for {
			var raw []byte
			err = stream.RecvMsg(&raw)
			if err != nil {
				break
			}
			n++
			var resp greeterv1.SayHelloStreamResponse
			if err := proto.Unmarshal(raw, &resp); err != nil {
				t.Fatal(err)
			}
			if resp.GetMessage() != greet || resp.GetSequence() != n {
				t.Fatalf("greeting %d: %q #%d, want %q", n, resp.GetMessage(), resp.GetSequence(), greet)
			}
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
		if got := status.Code(err); got != want {
			t.Fatalf("%x: %v, want %v", data, err, want)
		}
		if want == codes.OK && n != req.GetCount() {
			t.Fatalf("%d greetings, want %d", n, req.GetCount())
		}
		if want != codes.OK && n != 0 {
			t.Fatalf("%d greetings for a rejected request", n)
		}
	})
}

// splitNames cuts the fuzz input into names on '\n' (a control character,
// so never part of a valid name).
func splitNames(data []byte) []string { return strings.Split(string(data), "\n") }

// firstInvalid is the index of the first name the server must reject, or -1.
func firstInvalid(v *validate.Validator, names []string) int {
	for i, n := range names {
		if !utf8.ValidString(n) || v.Check(&greeterv1.SayHelloToAllRequest{Name: n}) != nil {
			return i
		}
	}
	return -1
}

func rawNames(names []string) [][]byte {
	out := make([][]byte, len(names))
	for i, n := range names {
		out[i] = wire(nil).str(1, n)
	}
	return out
}

var nameListSeeds = []string{"Ada", "Ada\nGrace\nLinus", "Ada\n\nGrace", "A\nB\nC\nD\nE\nF\nG\nH\nI\nJ\nK\nL", "Ada\n\xff", " \n", "Ada\nGrace\x7f"}

// FuzzSayHelloToAll streams the names of the input: the reply greets them
// as package greeting does and counts them all, or the call fails with
// INVALID_ARGUMENT if any name is invalid.
func FuzzSayHelloToAll(f *testing.F) {
	h := start(f)
	v := fuzzValidator(f)
	for _, s := range nameListSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		names := splitNames(data)
		bad := firstInvalid(v, names)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stream, err := h.conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, "/acme.greeter.v1.GreeterService/SayHelloToAll", grpc.ForceCodec(rawCodec{}))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range rawNames(names) {
			if err := stream.SendMsg(&m); err != nil {
				break
			}
		}
		_ = stream.CloseSend()
		var raw []byte
		err = stream.RecvMsg(&raw)
		if bad >= 0 {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("names %q (bad #%d): %v, want InvalidArgument", names, bad, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("names %q: %v", names, err)
		}
		var resp greeterv1.SayHelloToAllResponse
		if err := proto.Unmarshal(raw, &resp); err != nil {
			t.Fatal(err)
		}
		var crowd greeting.Crowd
		for _, n := range names {
			crowd.Add(n)
		}
		if resp.GetCount() != int64(len(names)) || resp.GetMessage() != crowd.Greeting() {
			t.Fatalf("names %q: %q (%d), want %q (%d)", names, resp.GetMessage(), resp.GetCount(), crowd.Greeting(), len(names))
		}
	})
}

// FuzzSayHelloChat sends the names of the input: each valid name before the
// first invalid one is answered, in order, then the call fails with
// INVALID_ARGUMENT (or ends OK if every name is valid).
func FuzzSayHelloChat(f *testing.F) {
	h := start(f)
	v := fuzzValidator(f)
	for _, s := range nameListSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		names := splitNames(data)
		bad := firstInvalid(v, names)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stream, err := h.conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, "/acme.greeter.v1.GreeterService/SayHelloChat", grpc.ForceCodec(rawCodec{}))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range rawNames(names) {
			if err := stream.SendMsg(&m); err != nil {
				break
			}
		}
		_ = stream.CloseSend()
		var n int
		for {
			var raw []byte
			if err = stream.RecvMsg(&raw); err != nil {
				break
			}
			var resp greeterv1.SayHelloChatResponse
			if err := proto.Unmarshal(raw, &resp); err != nil {
				t.Fatal(err)
			}
			if n >= len(names) || resp.GetMessage() != greeting.Hello(names[n]) || resp.GetSequence() != int64(n+1) {
				t.Fatalf("answer %d: %q #%d for names %q", n, resp.GetMessage(), resp.GetSequence(), names)
			}
			n++
		}
		want, answers := codes.OK, len(names)
		if bad >= 0 {
			want, answers = codes.InvalidArgument, bad
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
		if status.Code(err) != want || n != answers {
			t.Fatalf("names %q: %d answers, %v; want %d, %v", names, n, err, answers, want)
		}
	})
}
