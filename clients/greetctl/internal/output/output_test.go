package output_test

import (
	"bytes"
	"testing"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"

	"github.com/acme/greeter/clients/greetctl/internal/output"
)

func TestPrinter(t *testing.T) {
	msgs := []*greeterv1.SayHelloChatResponse{
		{Message: "Hello, Ada!", Sequence: 1},
		{Message: "Hello, \"Grace\": yes\x07", Sequence: 2},
	}
	tests := []struct {
		format output.Format
		want   string
	}{
		{output.Text, "Ada\nGrace\n"},
		{output.JSON, `{"message":"Hello, Ada!","sequence":"1"}` + "\n" + `{"message":"Hello, \"Grace\": yes\u0007","sequence":"2"}` + "\n"},
		// The second document holds a control character YAML cannot
		// decode: the JSON fallback keeps the data (keys sorted).
		{output.YAML, "message: Hello, Ada!\nsequence: \"1\"\n---\nmessage: \"Hello, \\\"Grace\\\": yes\\a\"\nsequence: \"2\"\n"},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			var buf bytes.Buffer
			p := output.New(&buf, tt.format)
			for i, m := range msgs {
				if err := p.Print(m, []string{"Ada", "Grace"}[i]); err != nil {
					t.Fatal(err)
				}
			}
			if buf.String() != tt.want {
				t.Errorf("got\n%q\nwant\n%q", buf.String(), tt.want)
			}
		})
	}
}

func TestPrintPlainValue(t *testing.T) {
	var buf bytes.Buffer
	v := struct {
		B string `json:"b"`
		A int    `json:"a"`
	}{"x", 1}
	if err := output.New(&buf, output.YAML).Print(v, ""); err != nil {
		t.Fatal(err)
	}
	if want := "b: x\na: 1\n"; buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]output.Format{"text": output.Text, "JSON": output.JSON, "yaml": output.YAML} {
		if got, err := output.ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := output.ParseFormat("xml"); err == nil {
		t.Error("ParseFormat(xml) succeeded")
	}
}
