package validate

import (
	"testing"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
)

// BenchmarkCheck measures validating one valid request: every RPC pays it
// once per request message.
func BenchmarkCheck(b *testing.B) {
	v, err := New()
	if err != nil {
		b.Fatal(err)
	}
	req := &greeterv1.SayHelloRequest{Name: "Ada Lovelace"}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Check(req); err != nil {
			b.Fatal(err)
		}
	}
}
