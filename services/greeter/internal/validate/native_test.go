package validate

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// requests lists a message of every request type of the contract.
func requests(name string) []proto.Message {
	return []proto.Message{
		&greeterv1.SayHelloRequest{Name: name},
		&greeterv1.SayHelloAgainRequest{Name: name},
		&greeterv1.SayHelloStreamRequest{Name: name, Count: 1},
		&greeterv1.SayHelloToAllRequest{Name: name},
		&greeterv1.SayHelloChatRequest{Name: name},
	}
}

// TestNativeCoversContract: every request of GreeterService takes the fast
// path when it is valid. Should a contract change put a request beyond it
// (a rule it does not know), this fails, rather than the server silently
// spending a microsecond more per request.
func TestNativeCoversContract(t *testing.T) {
	var n nativeRules
	methods := greeterv1.File_acme_greeter_v1_greeter_proto.Services().ByName("GreeterService").Methods()
	for i := range methods.Len() {
		in := methods.Get(i).Input()
		if n.plan(in) == nil {
			t.Errorf("%s (request of %s) has no fast path", in.FullName(), methods.Get(i).Name())
		}
	}
	for _, m := range requests("Ada Lovelace") {
		if !n.passes(m) {
			t.Errorf("%T{Ada Lovelace} does not pass natively", m)
		}
	}
}

// TestCheckIsProtovalidate runs the contract's rule cases (those of
// tools/internal/contract, which checks the rules themselves) through Check
// and through protovalidate alone: the status, message and details
// (BadRequest and buf.validate.Violations) are identical, and valid
// requests are vouched for natively.
func TestCheckIsProtovalidate(t *testing.T) {
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{ // name → the rule it breaks, "" none
		"Ada": "", "Ada Lovelace": "", "  Ada  ": "", strings.Repeat("é", 100): "",
		"": "required", strings.Repeat("a", 101): "string.max_len", "   ": "name.not_blank",
		"\u3000": "name.not_blank", "Ada\x00": "name.no_control_characters",
		"Ada\nLovelace": "name.no_control_characters", "Ada\tLovelace": "name.no_control_characters",
		"Ada\x7f": "name.no_control_characters", "Ada\u0085": "name.no_control_characters",
	}
	type tc struct {
		msg  proto.Message
		rule string
	}
	var cases []tc
	for name, rule := range names {
		for _, m := range requests(name) {
			cases = append(cases, tc{m, rule})
		}
	}
	stream := func(count int32, interval *durationpb.Duration) proto.Message {
		return &greeterv1.SayHelloStreamRequest{Name: "Ada", Count: count, Interval: interval}
	}
	cases = append(cases,
		tc{stream(1, nil), ""}, tc{stream(10000, nil), ""},
		tc{stream(0, nil), "int32.gte_lte"}, tc{stream(-1, nil), "int32.gte_lte"}, tc{stream(10001, nil), "int32.gte_lte"},
		tc{stream(2, durationpb.New(0)), ""}, tc{stream(2, durationpb.New(10*time.Second)), ""},
		tc{stream(2, durationpb.New(-1)), "duration.gte_lte"}, tc{stream(2, durationpb.New(10*time.Second+1)), "duration.gte_lte"},
	)
	if len(cases) != 74 {
		t.Fatalf("%d cases, want the contract's 74", len(cases))
	}
	for _, c := range cases {
		got := v.Check(c.msg)
		want := v.v.Validate(c.msg)
		if want != nil {
			want = toStatus(want)
		}
		if !proto.Equal(status.Convert(got).Proto(), status.Convert(want).Proto()) {
			t.Errorf("%T %v: Check = %v, protovalidate = %v", c.msg, c.msg, got, want)
		}
		var rule string
		if got != nil {
			rule = status.Convert(got).Proto().GetDetails()[0].String()
		}
		if (c.rule == "") != (got == nil) || !strings.Contains(rule, c.rule) {
			t.Errorf("%T %v: %v, want rule %q", c.msg, c.msg, got, c.rule)
		}
		_, hasInterval := c.msg.(*greeterv1.SayHelloStreamRequest)
		hasInterval = hasInterval && c.msg.(*greeterv1.SayHelloStreamRequest).Interval != nil
		if native := v.native.passes(c.msg); native != (c.rule == "" && !hasInterval) {
			t.Errorf("%T %v: passes natively: %v", c.msg, c.msg, native)
		}
	}
}

// FuzzNativeRules is the fast path's proof: whatever passes natively,
// protovalidate passes too; and every valid request without an interval
// (which the fast path leaves to protovalidate) passes natively, so valid
// traffic never pays for CEL.
func FuzzNativeRules(f *testing.F) {
	pv, err := protovalidate.New()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range nameSeeds {
		f.Add(s, int32(1), false)
	}
	f.Add("Ada", int32(0), false)
	f.Add("Ada", int32(10000), true)
	f.Add("\u00a0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000", int32(1), false)
	f.Add("\v", int32(1), false)
	f.Add("\u0085\u009f\u00a0", int32(1), false)
	f.Add("a\u180e", int32(1), false)
	var n nativeRules
	var cache planCache // shared by messages of changing types, as it must cope
	f.Fuzz(func(t *testing.T, name string, count int32, interval bool) {
		msgs := requests(name)
		s := &greeterv1.SayHelloStreamRequest{Name: name, Count: count}
		if interval {
			s.Interval = durationpb.New(time.Duration(count) * time.Millisecond)
		}
		msgs = append(msgs, s)
		for _, m := range msgs {
			native, valid := n.passes(m), pv.Validate(m) == nil
			if cached := n.passesWith(&cache, m); cached != native {
				t.Fatalf("%T %v passes natively: %v, with the plan cache: %v", m, m, native, cached)
			}
			if native && !valid {
				t.Fatalf("%T %v passes natively, but protovalidate finds %v", m, m, pv.Validate(m))
			}
			if valid && !native && utf8.ValidString(name) && (m != s || !interval) {
				t.Fatalf("%T %v is valid but does not pass natively", m, m)
			}
		}
	})
}

// nameRulesFile is a file like the contract's, with a message whose one
// field takes rules and a predefined rule other_name whose CEL rules are
// given, to see how the fast path reads descriptors it was not written for.
func nameRulesFile(t *testing.T, celRules []*validatepb.Rule, fieldRules func(other protoreflect.ExtensionType) *validatepb.FieldRules) protoreflect.MessageDescriptor {
	t.Helper()
	extOpts := &descriptorpb.FieldOptions{}
	proto.SetExtension(extOpts, validatepb.E_Predefined, &validatepb.PredefinedRules{Cel: celRules})
	// proto2, as name_rules.proto: proto3 cannot extend StringRules.
	rulesFile, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:       proto.String("nativetest/rules.proto"),
		Package:    proto.String("nativetest"),
		Dependency: []string{"buf/validate/validate.proto"},
		Syntax:     proto.String("proto2"),
		Extension: []*descriptorpb.FieldDescriptorProto{{
			Name: proto.String("other_name"), Number: proto.Int32(50999), Extendee: proto.String(".buf.validate.StringRules"),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_BOOL.Enum(),
			Options: extOpts,
		}},
	}, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	other := dynamicpb.NewExtensionType(rulesFile.Extensions().Get(0))
	fieldOpts := &descriptorpb.FieldOptions{}
	proto.SetExtension(fieldOpts, validatepb.E_Field, fieldRules(other))
	file, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:       proto.String("nativetest/request.proto"),
		Package:    proto.String("nativetest"),
		Dependency: []string{"buf/validate/validate.proto"},
		Syntax:     proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("Request"),
			Field: []*descriptorpb.FieldDescriptorProto{{
				Name: proto.String("name"), Number: proto.Int32(1), JsonName: proto.String("name"),
				Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(),
				Options: fieldOpts,
			}},
		}},
	}, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return file.Messages().Get(0)
}

// TestNativeReadsRules: the fast path follows the rules in the descriptor
// (a max_len of 5 is 5), and gives up on any it does not implement,
// including a predefined rule whose CEL differs from the contract's by a
// character.
func TestNativeReadsRules(t *testing.T) {
	notBlankRule := &validatepb.Rule{Id: proto.String("name.not_blank"), Expression: proto.String(`!rule || !this.matches('^[\\s\\p{Z}]*$')`)}
	changed := &validatepb.Rule{Id: proto.String("name.not_blank"), Expression: proto.String(`!rule || !this.matches('^[\\s]*$')`)}
	withOther := func(maxLen uint64, set bool) func(protoreflect.ExtensionType) *validatepb.FieldRules {
		return func(other protoreflect.ExtensionType) *validatepb.FieldRules {
			s := &validatepb.StringRules{MaxLen: proto.Uint64(maxLen)}
			if set {
				proto.SetExtension(s, other, true)
			}
			return &validatepb.FieldRules{Required: proto.Bool(true), Type: &validatepb.FieldRules_String_{String_: s}}
		}
	}
	newRequest := func(md protoreflect.MessageDescriptor, name string) proto.Message {
		m := dynamicpb.NewMessage(md)
		m.Set(md.Fields().ByName("name"), protoreflect.ValueOfString(name))
		return m
	}
	tests := []struct {
		name   string
		md     protoreflect.MessageDescriptor
		passes map[string]bool // request name → passes natively
	}{
		{"max_len 5 and a known predefined rule", nameRulesFile(t, []*validatepb.Rule{notBlankRule}, withOther(5, true)),
			map[string]bool{"Ada": true, "Adaaa": true, "Adaaaa": false, "   ": false, "A\x00": true /* not this rule */}},
		{"predefined rule with other CEL", nameRulesFile(t, []*validatepb.Rule{changed}, withOther(100, true)),
			map[string]bool{"Ada": false}},
		{"predefined rule unset", nameRulesFile(t, []*validatepb.Rule{changed}, withOther(100, false)),
			map[string]bool{"Ada": true, "   ": true, "": false}},
		{"min_len", nameRulesFile(t, nil, func(protoreflect.ExtensionType) *validatepb.FieldRules {
			return &validatepb.FieldRules{Type: &validatepb.FieldRules_String_{String_: &validatepb.StringRules{MinLen: proto.Uint64(2)}}}
		}), map[string]bool{"Ada": false}},
		{"field CEL", nameRulesFile(t, nil, func(protoreflect.ExtensionType) *validatepb.FieldRules {
			return &validatepb.FieldRules{Cel: []*validatepb.Rule{notBlankRule}}
		}), map[string]bool{"Ada": false}},
		{"ignore", nameRulesFile(t, nil, func(protoreflect.ExtensionType) *validatepb.FieldRules {
			return &validatepb.FieldRules{Ignore: validatepb.Ignore_IGNORE_ALWAYS.Enum()}
		}), map[string]bool{"Ada": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n nativeRules
			for name, want := range tt.passes {
				if got := n.passes(newRequest(tt.md, name)); got != want {
					t.Errorf("%q passes natively: %v, want %v", name, got, want)
				}
			}
		})
	}
}

// BenchmarkNativeRules is the fast path alone; BenchmarkCheck is Check.
func BenchmarkNativeRules(b *testing.B) {
	var n nativeRules
	req := &greeterv1.SayHelloRequest{Name: "Ada Lovelace"}
	b.ReportAllocs()
	for b.Loop() {
		if !n.passes(req) {
			b.Fatal("does not pass")
		}
	}
}
