package apidoc

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/linker"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/acme/greeter/tools/internal/repo"
)

// testProto is the file each case compiles: its message M holds the case's
// fields, next to two predefined rules of its own.
const testProto = `syntax = "proto2";
package t;
import "buf/validate/validate.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/timestamp.proto";

extend buf.validate.Int32Rules {
  optional bool even = 50001 [(buf.validate.predefined).cel = {
    id: "t.even", message: "must be even", expression: "!rule || this % 2 == 0"
  }];
  optional int32 multiple_of = 50002 [(buf.validate.predefined).cel = {
    id: "t.multiple_of", expression: "this % rule == 0 ? '' : 'not a multiple'"
  }];
}

enum Colour { COLOUR_UNSPECIFIED = 0; COLOUR_RED = 1; }

BODY
`

// compile compiles testProto around body with the pinned protovalidate
// protos and returns the files of the compilation and message t.M.
func compile(t *testing.T, body string) (*protoregistry.Files, protoreflect.MessageDescriptor) {
	t.Helper()
	third := filepath.Join(repo.TestRoot(t), "third_party", "protovalidate")
	compiler := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(protocompile.CompositeResolver{
			&protocompile.SourceResolver{Accessor: protocompile.SourceAccessorFromMap(map[string]string{
				"t.proto": strings.Replace(testProto, "BODY", body, 1),
			})},
			&protocompile.SourceResolver{ImportPaths: []string{third}},
		}),
	}
	compiled, err := compiler.Compile(context.Background(), "t.proto")
	if err != nil {
		t.Fatalf("compile (is third_party materialised? `make protodeps`): %v", err)
	}
	files := new(protoregistry.Files)
	var register func(f linker.File)
	seen := map[string]bool{}
	register = func(f linker.File) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		imports := f.Imports()
		for i := range imports.Len() {
			if dep := compiled.FindFileByPath(imports.Get(i).Path()); dep != nil {
				register(dep)
			} else if dep, ok := imports.Get(i).FileDescriptor.(linker.File); ok {
				register(dep)
			}
		}
		if err := files.RegisterFile(f); err != nil {
			t.Fatal(err)
		}
	}
	register(compiled[0])
	md := compiled[0].Messages().ByName("M")
	if md == nil && strings.Contains(body, "message M") {
		t.Fatal("no message t.M")
	}
	return files, md
}

// TestFieldWords is the rules-to-words table at work: a field's rules as a
// contract writes them, and the words the reference shows.
func TestFieldWords(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		field string
		want  []string
	}{
		"no rules": {`optional string f = 1;`, nil},
		"required and max_len": {
			`optional string f = 1 [(buf.validate.field).required = true, (buf.validate.field).string.max_len = 100];`,
			[]string{"required", "at most 100 characters"}},
		"string lengths in declaration order": {
			`optional string f = 1 [(buf.validate.field).string = {max_bytes: 8, min_len: 2}];`,
			[]string{"at least 2 characters", "at most 8 bytes (UTF-8)"}},
		"pattern": {
			`optional string f = 1 [(buf.validate.field).string.pattern = "^[a-z]+$"];`,
			[]string{"matches the regular expression (RE2) `\"^[a-z]+$\"`"}},
		"string in": {
			`optional string f = 1 [(buf.validate.field).string = {in: ["a", "b"]}];`,
			[]string{"one of `\"a\"`, `\"b\"`"}},
		"a flag set": {
			`optional string f = 1 [(buf.validate.field).string.email = true];`,
			[]string{"an email address"}},
		"a flag unset is no rule": {
			`optional string f = 1 [(buf.validate.field).string.email = false];`,
			nil},
		"an enum rule": {
			`optional string f = 1 [(buf.validate.field).string.well_known_regex = KNOWN_REGEX_HTTP_HEADER_NAME];`,
			[]string{"an HTTP header name"}},
		"inclusive range": {
			`optional int32 f = 1 [(buf.validate.field).int32 = {gte: 1, lte: 10000}];`,
			[]string{"from 1 to 10000"}},
		"lower bound only": {
			`optional int64 f = 1 [(buf.validate.field).int64.gt = 0];`,
			[]string{"greater than 0"}},
		"mixed range": {
			`optional uint32 f = 1 [(buf.validate.field).uint32 = {gt: 0, lte: 10}];`,
			[]string{"greater than 0 and at most 10"}},
		"exclusive range": {
			`optional sint32 f = 1 [(buf.validate.field).sint32 = {gt: 10, lt: 5}];`,
			[]string{"less than 5 or greater than 10"}},
		"range first, then the other rules": {
			`optional fixed64 f = 1 [(buf.validate.field).fixed64 = {not_in: [7], lt: 100}];`,
			[]string{"less than 100", "none of 7"}},
		"double finite": {
			`optional double f = 1 [(buf.validate.field).double = {finite: true, gte: 0.5}];`,
			[]string{"at least 0.5", "finite (not infinite, not NaN)"}},
		"duration range": {
			`optional google.protobuf.Duration f = 1 [(buf.validate.field).duration = {gte: {}, lte: {seconds: 10}}];`,
			[]string{"from 0s to 10s"}},
		"duration with nanos": {
			`optional google.protobuf.Duration f = 1 [(buf.validate.field).duration.gt = {nanos: 500000000}];`,
			[]string{"greater than 500ms"}},
		"timestamp": {
			`optional google.protobuf.Timestamp f = 1 [(buf.validate.field).timestamp = {gt: {seconds: 0}, lt_now: true}];`,
			[]string{"greater than 1970-01-01T00:00:00Z", "in the past"}},
		"timestamp within": {
			`optional google.protobuf.Timestamp f = 1 [(buf.validate.field).timestamp.within = {seconds: 3600}];`,
			[]string{"within 1h0m0s of now"}},
		"bool const false is a rule": {
			`optional bool f = 1 [(buf.validate.field).bool.const = false];`,
			[]string{"exactly false"}},
		"bytes": {
			`optional bytes f = 1 [(buf.validate.field).bytes = {max_len: 16, ipv4: true}];`,
			[]string{"at most 16 bytes", "an IPv4 address in network byte order (4 bytes)"}},
		"enum": {
			`optional Colour f = 1 [(buf.validate.field).enum = {defined_only: true, not_in: [0]}];`,
			[]string{"one of the enum's defined values", "none of 0"}},
		"repeated with item rules": {
			`repeated string f = 1 [(buf.validate.field).repeated = {min_items: 1, unique: true, items: {string: {min_len: 1, max_len: 5}}}];`,
			[]string{"at least 1 items", "items are unique", "each item: at least 1 characters, at most 5 characters"}},
		"map keys and values": {
			`map<string, int32> f = 1 [(buf.validate.field).map = {max_pairs: 3, keys: {string: {min_len: 1}}, values: {int32: {gt: 0}}}];`,
			[]string{"at most 3 entries", "each key: at least 1 characters", "each value: greater than 0"}},
		"ignore if zero": {
			`optional string f = 1 [(buf.validate.field).ignore = IGNORE_IF_ZERO_VALUE, (buf.validate.field).string.uri = true];`,
			[]string{"optional: the rules apply only to a value other than the zero value", "an absolute URI"}},
		"field CEL with a message": {
			`optional int32 f = 1 [(buf.validate.field).cel = {id: "f.even", message: "must be even", expression: "this % 2 == 0"}];`,
			[]string{"must be even (`f.even`)"}},
		"field CEL without a message shows its expression": {
			`optional int32 f = 1 [(buf.validate.field).cel = {id: "f.small", expression: "this < 3 ? '' : 'too big'"}];`,
			[]string{"`this < 3 ? '' : 'too big'` (`f.small`)"}},
		"predefined rule set to true": {
			`optional int32 f = 1 [(buf.validate.field).int32.(t.even) = true, (buf.validate.field).int32.lte = 8];`,
			[]string{"at most 8", "`t.even`: must be even (`t.even`)"}},
		"predefined rule with a value": {
			`optional int32 f = 1 [(buf.validate.field).int32.(t.multiple_of) = 3];`,
			[]string{"`t.multiple_of` = 3: `this % rule == 0 ? '' : 'not a multiple'` (`t.multiple_of`)"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			files, md := compile(t, "message M {\n  "+tc.field+"\n}")
			got := NewRules(files).Field(md.Fields().ByName("f"))
			if !slices.Equal(got, tc.want) {
				t.Errorf("words:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestMessageAndOneofWords(t *testing.T) {
	t.Parallel()
	files, md := compile(t, `message M {
  option (buf.validate.message).cel = {id: "m.pair", message: "a and b are set together", expression: "has(this.a) == has(this.b)"};
  option (buf.validate.message).oneof = {fields: ["a", "b"], required: true};
  optional string a = 1;
  optional string b = 2;
  oneof choice {
    option (buf.validate.oneof).required = true;
    string c = 3;
    string d = 4;
  }
}`)
	rules := NewRules(files)
	if got, want := rules.Message(md), []string{"a and b are set together (`m.pair`)", "exactly one of `a`, `b` is set"}; !slices.Equal(got, want) {
		t.Errorf("message rules:\n got %q\nwant %q", got, want)
	}
	if got, want := rules.Oneof(md.Oneofs().ByName("choice")), []string{"exactly one field of the oneof is set"}; !slices.Equal(got, want) {
		t.Errorf("oneof rules:\n got %q\nwant %q", got, want)
	}
}

// TestEveryRuleHasWords walks every rule of the pinned protovalidate and
// fails for one the table lacks: a newer protovalidate's rule must be put
// in words before the reference can show it.
func TestEveryRuleHasWords(t *testing.T) {
	t.Parallel()
	files, _ := compile(t, "")
	desc, err := files.FindDescriptorByName("buf.validate.FieldRules")
	if err != nil {
		t.Fatal(err)
	}
	fieldRules := desc.(protoreflect.MessageDescriptor)
	keys := []string{"required", "oneof.required", "message.oneof", "message.oneof.required", "range.inclusive"}
	ignore := fieldRules.Fields().ByName("ignore").Enum().Values()
	for i := range ignore.Len() {
		keys = append(keys, "ignore."+string(ignore.Get(i).Name()))
	}
	kinds := fieldRules.Oneofs().ByName("type").Fields()
	for i := range kinds.Len() {
		kind := kinds.Get(i)
		rules := kind.Message().Fields()
		for j := range rules.Len() {
			rule := rules.Get(j)
			key := string(kind.Name()) + "." + string(rule.Name())
			if rule.Enum() != nil && !rule.IsList() {
				values := rule.Enum().Values()
				for k := range values.Len() {
					keys = append(keys, key+"."+string(values.Get(k).Name()))
				}
				continue
			}
			keys = append(keys, key)
		}
	}
	for _, key := range keys {
		if _, ok := ruleWords[key]; !ok {
			t.Errorf("ruleWords has no words for %s", key)
		}
	}
}

func TestBlock(t *testing.T) {
	t.Parallel()
	tests := map[string]struct{ in, want string }{
		"paragraph":             {"a\nb", "a\nb\n"},
		"list stays a list":     {"rules:\n\n  - one;\n  - two.", "rules:\n\n  - one;\n  - two.\n"},
		"indented text is code": {"for example:\n\n  string name = 1 [\n    x\n  ];\n\nafter", "for example:\n\n```proto\nstring name = 1 [\n  x\n];\n```\n\nafter\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := block(tc.in); got != tc.want {
				t.Errorf("block(%q):\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}
