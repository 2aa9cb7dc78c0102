package validate

import (
	"strings"
	"testing"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestCheck(t *testing.T) {
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		msg         proto.Message
		field, rule string
	}{
		{"valid", &greeterv1.SayHelloRequest{Name: "Ada"}, "", ""},
		{"empty", &greeterv1.SayHelloRequest{}, "name", "required"},
		{"too long", &greeterv1.SayHelloRequest{Name: strings.Repeat("é", 101)}, "name", "string.max_len"},
		{"100 runes ok", &greeterv1.SayHelloRequest{Name: strings.Repeat("é", 100)}, "", ""},
		{"blank", &greeterv1.SayHelloAgainRequest{Name: " \t\u00a0"}, "name", "name.not_blank"},
		{"control", &greeterv1.SayHelloToAllRequest{Name: "A\x00da"}, "name", "name.no_control_characters"},
		{"count zero", &greeterv1.SayHelloStreamRequest{Name: "Ada"}, "count", "int32.gte_lte"},
		{"count too big", &greeterv1.SayHelloStreamRequest{Name: "Ada", Count: 10001}, "count", "int32.gte_lte"},
		{"interval negative", &greeterv1.SayHelloStreamRequest{Name: "Ada", Count: 1, Interval: durationpb.New(-1)}, "interval", "duration.gte_lte"},
		{"interval too long", &greeterv1.SayHelloStreamRequest{Name: "Ada", Count: 1, Interval: &durationpb.Duration{Seconds: 11}}, "interval", "duration.gte_lte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Check(tt.msg)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Check() = %v, want nil", err)
				}
				return
			}
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument {
				t.Fatalf("code = %v, want InvalidArgument (%v)", st.Code(), err)
			}
			var br *errdetails.BadRequest
			for _, d := range st.Details() {
				if b, ok := d.(*errdetails.BadRequest); ok {
					br = b
				}
			}
			if br == nil || len(br.FieldViolations) == 0 {
				t.Fatalf("no BadRequest detail in %v", st.Details())
			}
			fv := br.FieldViolations[0]
			if fv.Field != tt.field || fv.Reason != tt.rule || fv.Description == "" {
				t.Errorf("violation = {%q %q %q}, want field %q rule %q", fv.Field, fv.Reason, fv.Description, tt.field, tt.rule)
			}
		})
	}
}

// TestNameRulesArePredefined checks what protovalidate-aware clients see of
// the name rules in the native buf.validate.Violations detail: the rule ids
// and messages of the contract, under the rule path of the predefined rule
// acme.greeter.v1.person_name, which this binary resolves from the registry
// the generated package fills.
func TestNameRulesArePredefined(t *testing.T) {
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		msg        proto.Message
		rule, text string
	}{
		{"blank", &greeterv1.SayHelloRequest{Name: "\u3000"}, "name.not_blank", "must contain a character that is not white space"},
		{"control", &greeterv1.SayHelloChatRequest{Name: "Ada\x7f"}, "name.no_control_characters", "must not contain control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var violations *validatepb.Violations
			for _, d := range status.Convert(v.Check(tt.msg)).Details() {
				if vs, ok := d.(*validatepb.Violations); ok {
					violations = vs
				}
			}
			if len(violations.GetViolations()) != 1 {
				t.Fatalf("want one native violation, got %v", violations)
			}
			got := violations.GetViolations()[0]
			if got.GetRuleId() != tt.rule || got.GetMessage() != tt.text {
				t.Errorf("violation %q %q, want %q %q", got.GetRuleId(), got.GetMessage(), tt.rule, tt.text)
			}
			if path := protovalidate.FieldPathString(got.GetRule()); path != "string.[acme.greeter.v1.person_name]" {
				t.Errorf("rule path %q, want the predefined rule string.[acme.greeter.v1.person_name]", path)
			}
		})
	}
}
