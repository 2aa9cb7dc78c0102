package contract_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/acme/greeter/tools/internal/protocheck"
	"github.com/acme/greeter/tools/internal/repo"
)

// image compiles the buf workspace with the pinned buf and returns its
// files, imports included.
func image(t *testing.T) *descriptorpb.FileDescriptorSet {
	t.Helper()
	out := filepath.Join(t.TempDir(), "image.binpb")
	if _, err := protocheck.Buf(context.Background(), repo.TestRoot(t),
		"build", "--exclude-source-info", "--output", out); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(data, &set); err != nil {
		t.Fatal(err)
	}
	return &set
}

func TestProtovalidateInStep(t *testing.T) {
	t.Parallel()
	var materialised *descriptorpb.FileDescriptorProto
	for _, f := range image(t).GetFile() {
		if f.GetName() == "buf/validate/validate.proto" {
			materialised = f
		}
	}
	if materialised == nil {
		t.Fatal("the workspace image has no buf/validate/validate.proto")
	}
	runtime := protodesc.ToFileDescriptorProto(validatepb.File_buf_validate_validate_proto)
	runtime.SourceCodeInfo = nil
	// buf records its own image metadata as an unknown field of each file.
	materialised.ProtoReflect().SetUnknown(nil)
	if !proto.Equal(materialised, runtime) {
		t.Fatal("buf/validate/validate.proto materialised from github.com/bufbuild/protovalidate (tools/go.mod) " +
			"differs from the descriptor compiled into buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go: " +
			"move the two to the same protovalidate release")
	}
}

func TestValidationRules(t *testing.T) {
	t.Parallel()
	files, err := protodesc.NewFiles(image(t))
	if err != nil {
		t.Fatal(err)
	}
	// The name rules are the predefined rule acme.greeter.v1.person_name, an
	// extension of buf.validate.StringRules. This test binary does not link
	// gen/go, so the global registry does not know it, and protovalidate
	// would refuse the unknown rule (a compilation error): it must come from
	// the image, like the messages.
	validator, err := protovalidate.New(protovalidate.WithExtensionTypeResolver(dynamicpb.NewTypes(files)))
	if err != nil {
		t.Fatal(err)
	}
	newMessage := func(t *testing.T, name string, fields map[string]protoreflect.Value) proto.Message {
		t.Helper()
		d, err := files.FindDescriptorByName(protoreflect.FullName("acme.greeter.v1." + name))
		if err != nil {
			t.Fatal(err)
		}
		msg := dynamicpb.NewMessage(d.(protoreflect.MessageDescriptor))
		for field, value := range fields {
			msg.Set(msg.Descriptor().Fields().ByName(protoreflect.Name(field)), value)
		}
		return msg
	}
	str := protoreflect.ValueOfString
	interval := func(d time.Duration) protoreflect.Value {
		// The duration message must come from the image's registry, not the
		// generated type, for the dynamic message to accept it.
		dd, err := files.FindDescriptorByName("google.protobuf.Duration")
		if err != nil {
			t.Fatal(err)
		}
		m := dynamicpb.NewMessage(dd.(protoreflect.MessageDescriptor))
		pb := durationpb.New(d)
		m.Set(m.Descriptor().Fields().ByName("seconds"), protoreflect.ValueOfInt64(pb.GetSeconds()))
		m.Set(m.Descriptor().Fields().ByName("nanos"), protoreflect.ValueOfInt32(pb.GetNanos()))
		return protoreflect.ValueOfMessage(m)
	}
	stream := func(name string, count int32, extra ...protoreflect.Value) map[string]protoreflect.Value {
		f := map[string]protoreflect.Value{"name": str(name), "count": protoreflect.ValueOfInt32(count)}
		if len(extra) > 0 {
			f["interval"] = extra[0]
		}
		return f
	}

	nameCases := map[string]struct {
		name     string
		wantRule string // empty: valid
	}{
		"plain":                  {name: "Ada"},
		"inner spaces":           {name: "Ada Lovelace"},
		"surrounding spaces":     {name: "  Ada  "},
		"100 multibyte chars":    {name: strings.Repeat("é", 100)},
		"empty":                  {name: "", wantRule: "required"},
		"101 chars":              {name: strings.Repeat("a", 101), wantRule: "string.max_len"},
		"spaces only":            {name: "   ", wantRule: "name.not_blank"},
		"ideographic space only": {name: "\u3000", wantRule: "name.not_blank"},
		"NUL":                    {name: "Ada\x00", wantRule: "name.no_control_characters"},
		"newline":                {name: "Ada\nLovelace", wantRule: "name.no_control_characters"},
		"tab":                    {name: "Ada\tLovelace", wantRule: "name.no_control_characters"},
		"DEL":                    {name: "Ada\x7f", wantRule: "name.no_control_characters"},
		"C1 control":             {name: "Ada\u0085", wantRule: "name.no_control_characters"},
	}
	for _, msgName := range []string{"SayHelloRequest", "SayHelloAgainRequest", "SayHelloToAllRequest", "SayHelloChatRequest", "SayHelloStreamRequest"} {
		for caseName, tc := range nameCases {
			t.Run(msgName+"/"+caseName, func(t *testing.T) {
				fields := map[string]protoreflect.Value{"name": str(tc.name)}
				if msgName == "SayHelloStreamRequest" {
					fields = stream(tc.name, 1)
				}
				checkViolation(t, validator, newMessage(t, msgName, fields), "name", tc.wantRule)
			})
		}
	}

	streamCases := map[string]struct {
		fields    map[string]protoreflect.Value
		wantField string
		wantRule  string
	}{
		"count 1":              {fields: stream("Ada", 1)},
		"count 10000":          {fields: stream("Ada", 10000)},
		"count 0":              {fields: stream("Ada", 0), wantField: "count", wantRule: "int32.gte_lte"},
		"count -1":             {fields: stream("Ada", -1), wantField: "count", wantRule: "int32.gte_lte"},
		"count 10001":          {fields: stream("Ada", 10001), wantField: "count", wantRule: "int32.gte_lte"},
		"interval 0":           {fields: stream("Ada", 2, interval(0))},
		"interval 10s":         {fields: stream("Ada", 2, interval(10*time.Second))},
		"interval -1ns":        {fields: stream("Ada", 2, interval(-1)), wantField: "interval", wantRule: "duration.gte_lte"},
		"interval 10s and 1ns": {fields: stream("Ada", 2, interval(10*time.Second+1)), wantField: "interval", wantRule: "duration.gte_lte"},
	}
	for caseName, tc := range streamCases {
		t.Run("SayHelloStreamRequest/"+caseName, func(t *testing.T) {
			checkViolation(t, validator, newMessage(t, "SayHelloStreamRequest", tc.fields), tc.wantField, tc.wantRule)
		})
	}
}

// TestNameFieldsUsePersonName pins down where the name rules live: once, in
// the predefined rule acme.greeter.v1.person_name. Every string field called
// name, or ending in _name, of every request of acme.greeter.v1 must set it
// and keep its own required and max_len, and none may spell the rules out as
// field CEL again; so a new request's name cannot forget them, even before
// TestValidationRules has cases for it.
func TestNameFieldsUsePersonName(t *testing.T) {
	t.Parallel()
	files, err := protodesc.NewFiles(image(t))
	if err != nil {
		t.Fatal(err)
	}
	types := dynamicpb.NewTypes(files)
	personName, err := types.FindExtensionByName("acme.greeter.v1.person_name")
	if err != nil {
		t.Fatal(err)
	}
	if got := personName.TypeDescriptor().ContainingMessage().FullName(); got != "buf.validate.StringRules" {
		t.Fatalf("person_name extends %s, want buf.validate.StringRules", got)
	}
	// buf breaking (FILE rules) lets an extension change its number, but a
	// consumer generated before the change would no longer recognise the
	// rule in the field options: the number is pinned here instead.
	if got := personName.TypeDescriptor().Number(); got != 50100 {
		t.Errorf("person_name is number %d, want 50100 for good", got)
	}
	predefined, _ := proto.GetExtension(personName.TypeDescriptor().Options(), validatepb.E_Predefined).(*validatepb.PredefinedRules)
	var ids []string
	for _, rule := range predefined.GetCel() {
		ids = append(ids, rule.GetId())
	}
	if want := []string{"name.not_blank", "name.no_control_characters"}; !slices.Equal(ids, want) {
		t.Errorf("person_name's predefined rules are %q, want %q", ids, want)
	}

	var found []string
	files.RangeFilesByPackage("acme.greeter.v1", func(f protoreflect.FileDescriptor) bool {
		for i := range f.Messages().Len() {
			msg := f.Messages().Get(i)
			if !strings.HasSuffix(string(msg.Name()), "Request") {
				continue
			}
			for j := range msg.Fields().Len() {
				field := msg.Fields().Get(j)
				if field.Kind() != protoreflect.StringKind || (field.Name() != "name" && !strings.HasSuffix(string(field.Name()), "_name")) {
					continue
				}
				found = append(found, string(field.FullName()))
				t.Run(string(field.FullName()), func(t *testing.T) {
					checkPersonName(t, field, personName, types)
				})
			}
		}
		return true
	})
	// The walk itself must not miss the names there are today.
	for _, want := range []string{
		"acme.greeter.v1.SayHelloRequest.name",
		"acme.greeter.v1.SayHelloAgainRequest.name",
		"acme.greeter.v1.SayHelloStreamRequest.name",
		"acme.greeter.v1.SayHelloToAllRequest.name",
		"acme.greeter.v1.SayHelloChatRequest.name",
	} {
		if !slices.Contains(found, want) {
			t.Errorf("name field %s not found; found %q", want, found)
		}
	}
}

// checkPersonName asserts that field sets person_name to true, is required,
// has a max_len and repeats none of the name rules as its own CEL.
func checkPersonName(t *testing.T, field protoreflect.FieldDescriptor, personName protoreflect.ExtensionType, types *dynamicpb.Types) {
	t.Helper()
	rules, _ := proto.GetExtension(field.Options(), validatepb.E_Field).(*validatepb.FieldRules)
	if !rules.GetRequired() {
		t.Error("not required")
	}
	if !rules.GetString().HasMaxLen() {
		t.Error("no string.max_len")
	}
	for _, rule := range rules.GetCel() {
		if strings.HasPrefix(rule.GetId(), "name.") {
			t.Errorf("field CEL rule %s: the name rules belong to person_name only", rule.GetId())
		}
	}
	// The image was decoded with the global registry, which lacks
	// person_name: the extension is an unknown field of the string rules
	// until they are decoded again, as the image's StringRules (the message
	// person_name extends) with the image's types.
	raw, err := proto.Marshal(rules.GetString())
	if err != nil {
		t.Fatal(err)
	}
	xd := personName.TypeDescriptor()
	str := dynamicpb.NewMessage(xd.ContainingMessage())
	if err := (proto.UnmarshalOptions{Resolver: types}).Unmarshal(raw, str); err != nil {
		t.Fatal(err)
	}
	if !str.Has(xd) {
		t.Fatal("does not set (buf.validate.field).string.(acme.greeter.v1.person_name)")
	}
	if !str.Get(xd).Bool() {
		t.Error("sets person_name to false: the name rules are off")
	}
}

// checkViolation asserts that msg is valid when wantRule is empty, and
// otherwise that validation reports exactly one violation, of wantRule on
// wantField.
func checkViolation(t *testing.T, v protovalidate.Validator, msg proto.Message, wantField, wantRule string) {
	t.Helper()
	err := v.Validate(msg)
	if wantRule == "" {
		if err != nil {
			t.Fatalf("want valid, got %v", err)
		}
		return
	}
	var valErr *protovalidate.ValidationError
	if !errors.As(err, &valErr) {
		t.Fatalf("want a validation error for rule %s, got %v", wantRule, err)
	}
	if len(valErr.Violations) != 1 {
		t.Fatalf("want exactly one violation (%s), got %v", wantRule, valErr)
	}
	got := valErr.Violations[0].Proto
	if path := protovalidate.FieldPathString(got.GetField()); path != wantField {
		t.Errorf("field path = %q, want %q", path, wantField)
	}
	if got.GetRuleId() != wantRule {
		t.Errorf("rule = %q, want %q (%s)", got.GetRuleId(), wantRule, got.GetMessage())
	}
}
