package apidoc

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The protovalidate options this package reads, by full name.
const (
	fieldRulesOption   protoreflect.FullName = "buf.validate.field"
	messageRulesOption protoreflect.FullName = "buf.validate.message"
	oneofRulesOption   protoreflect.FullName = "buf.validate.oneof"
	predefinedOption   protoreflect.FullName = "buf.validate.predefined"
)

// Rules reads protovalidate's options off descriptors and puts them in
// words. It resolves every extension (protovalidate's own, and the
// predefined rules a contract declares, such as acme.greeter.v1.person_name)
// from the files of one compilation, not from the types linked into this
// program: a plugin sees the contract's extensions only as unknown fields.
type Rules struct {
	types *dynamicpb.Types
}

// NewRules returns the Rules of the compilation files holds (the files of a
// CodeGeneratorRequest, with everything they import).
func NewRules(files *protoregistry.Files) *Rules {
	return &Rules{types: dynamicpb.NewTypes(files)}
}

// CELRule is one CEL rule of protovalidate (buf.validate.Rule).
type CELRule struct {
	// ID is the rule's id: the reason a violation reports.
	ID string
	// Message is what a violation says, or "" when the expression builds it.
	Message string
	// Expression is the CEL expression.
	Expression string
}

// Words is the rule in words: its message, or its expression when it has
// none, and its id.
func (r CELRule) Words() string {
	text := r.Message
	if text == "" {
		text = code(r.Expression)
	}
	if r.ID == "" {
		return text
	}
	return text + " (" + code(r.ID) + ")"
}

// Field is the words of a field's rules ((buf.validate.field)), one phrase
// per rule: whether it is required or ignored, the rules of its type in
// declaration order, the predefined rules it sets, then its own CEL rules.
// A field without rules has none.
func (r *Rules) Field(fd protoreflect.FieldDescriptor) []string {
	rules, ok := r.option(fd.Options(), fieldRulesOption)
	if !ok {
		return nil
	}
	return r.fieldRules(rules)
}

// Message is the words of a message's own rules ((buf.validate.message)):
// its CEL rules and its oneof rules.
func (r *Rules) Message(md protoreflect.MessageDescriptor) []string {
	rules, ok := r.option(md.Options(), messageRulesOption)
	if !ok {
		return nil
	}
	var words []string
	for _, rule := range celRules(rules, "cel") {
		words = append(words, rule.Words())
	}
	if fd := rules.Descriptor().Fields().ByName("oneof"); fd != nil && rules.Has(fd) {
		list := rules.Get(fd).List()
		for i := range list.Len() {
			oneof := list.Get(i).Message()
			var names []string
			for _, v := range listOf(oneof, "fields") {
				names = append(names, code(v.String()))
			}
			phrase := phraseFor("message.oneof", strings.Join(names, ", "))
			if b, ok := boolOf(oneof, "required"); ok && b {
				phrase = phraseFor("message.oneof.required", strings.Join(names, ", "))
			}
			words = append(words, phrase)
		}
	}
	return words
}

// Oneof is the words of a oneof's rules ((buf.validate.oneof)).
func (r *Rules) Oneof(od protoreflect.OneofDescriptor) []string {
	rules, ok := r.option(od.Options(), oneofRulesOption)
	if !ok {
		return nil
	}
	if b, ok := boolOf(rules, "required"); ok && b {
		return []string{phraseFor("oneof.required")}
	}
	return nil
}

// Predefined is the CEL rules of a predefined rule: an extension of one of
// protovalidate's rules messages carrying (buf.validate.predefined).
func (r *Rules) Predefined(xd protoreflect.FieldDescriptor) []CELRule {
	rules, ok := r.option(xd.Options(), predefinedOption)
	if !ok {
		return nil
	}
	return celRules(rules, "cel")
}

// option decodes the extension name of opts anew with the compilation's
// types, so that extensions unknown to this program (the contract's own
// predefined rules) are fields rather than unknown bytes.
func (r *Rules) option(opts proto.Message, name protoreflect.FullName) (protoreflect.Message, bool) {
	if opts == nil || !opts.ProtoReflect().IsValid() {
		return nil, false
	}
	xt, err := r.types.FindExtensionByName(name)
	if err != nil {
		return nil, false // the compilation does not import protovalidate
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(opts)
	if err != nil {
		return nil, false
	}
	fresh := opts.ProtoReflect().New()
	if err := (proto.UnmarshalOptions{Resolver: r.types}).Unmarshal(raw, fresh.Interface()); err != nil {
		return nil, false
	}
	if !fresh.Has(xt.TypeDescriptor()) {
		return nil, false
	}
	return fresh.Get(xt.TypeDescriptor()).Message(), true
}

// fieldRules puts a buf.validate.FieldRules message in words.
func (r *Rules) fieldRules(rules protoreflect.Message) []string {
	var words []string
	if b, ok := boolOf(rules, "required"); ok && b {
		words = append(words, phraseFor("required"))
	}
	if fd := rules.Descriptor().Fields().ByName("ignore"); fd != nil && rules.Has(fd) {
		value := fd.Enum().Values().ByNumber(rules.Get(fd).Enum())
		name := strconv.Itoa(int(rules.Get(fd).Enum()))
		if value != nil {
			name = string(value.Name())
		}
		words = append(words, phraseFor("ignore."+name))
	}
	if od := rules.Descriptor().Oneofs().ByName("type"); od != nil {
		if fd := rules.WhichOneof(od); fd != nil {
			words = append(words, r.typeRules(string(fd.Name()), rules.Get(fd).Message())...)
		}
	}
	for _, rule := range celRules(rules, "cel") {
		words = append(words, rule.Words())
	}
	return words
}

// typeRules puts the rules message of one kind of field (kind is the name
// of its field in FieldRules' type oneof: "string", "int32", "duration",
// ...) in words: its rules in declaration order, a lower and an upper bound
// as one range, then the predefined rules it sets.
func (r *Rules) typeRules(kind string, rules protoreflect.Message) []string {
	var set []protoreflect.FieldDescriptor
	rules.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		set = append(set, fd)
		return true
	})
	// Declared rules in declaration order, then extensions by number.
	slices.SortFunc(set, func(a, b protoreflect.FieldDescriptor) int {
		if a.IsExtension() != b.IsExtension() {
			if a.IsExtension() {
				return 1
			}
			return -1
		}
		if a.IsExtension() {
			return cmp.Compare(a.Number(), b.Number())
		}
		return cmp.Compare(a.Index(), b.Index())
	})
	var words []string
	var lower, upper protoreflect.FieldDescriptor
	for _, fd := range set {
		v := rules.Get(fd)
		name := string(fd.Name())
		switch {
		case fd.IsExtension():
			words = append(words, r.predefinedWords(fd, v))
		case name == "gt" || name == "gte":
			lower = fd
		case name == "lt" || name == "lte":
			upper = fd
		case name == "items" || name == "keys" || name == "values":
			words = append(words, phraseFor(kind+"."+name, strings.Join(r.fieldRules(v.Message()), ", ")))
		case fd.Kind() == protoreflect.BoolKind && !fd.IsList() && !isValueRule(name):
			// A flag: the rule holds only when set to true.
			if v.Bool() {
				words = append(words, phraseFor(kind+"."+name))
			}
		case fd.Enum() != nil && !fd.IsList():
			value := fd.Enum().Values().ByNumber(v.Enum())
			if value != nil {
				words = append(words, phraseFor(kind+"."+name+"."+string(value.Name())))
			}
		default:
			words = append(words, phraseFor(kind+"."+name, formatValue(fd, v)))
		}
	}
	if rng := rangeWords(kind, rules, lower, upper); rng != "" {
		// The range reads best where protovalidate declares it: first.
		words = append([]string{rng}, words...)
	}
	return words
}

// isValueRule reports whether a bool rule compares the field's value
// (bool.const = false is a rule) rather than switching a check on.
func isValueRule(name string) bool {
	return name == "const" || name == "strict"
}

// rangeWords joins a lower and an upper bound into one phrase: "from 1 to
// 10000" when both are inclusive, "greater than 0 and at most 10" for a
// mixed pair, and, as protovalidate reads a lower bound above the upper one,
// "less than 0 or greater than 10" (outside the range).
func rangeWords(kind string, rules protoreflect.Message, lower, upper protoreflect.FieldDescriptor) string {
	switch {
	case lower == nil && upper == nil:
		return ""
	case upper == nil:
		return phraseFor(kind+"."+string(lower.Name()), formatValue(lower, rules.Get(lower)))
	case lower == nil:
		return phraseFor(kind+"."+string(upper.Name()), formatValue(upper, rules.Get(upper)))
	}
	lo, hi := formatValue(lower, rules.Get(lower)), formatValue(upper, rules.Get(upper))
	loWords := phraseFor(kind+"."+string(lower.Name()), lo)
	hiWords := phraseFor(kind+"."+string(upper.Name()), hi)
	if ordinal(rules.Get(lower)) > ordinal(rules.Get(upper)) {
		return hiWords + " or " + loWords
	}
	if lower.Name() == "gte" && upper.Name() == "lte" {
		return phraseFor("range.inclusive", lo, hi)
	}
	return loWords + " and " + hiWords
}

// ordinal places a bound on a line, to tell an exclusive range (lower bound
// above the upper one) from an inclusive one.
func ordinal(v protoreflect.Value) float64 {
	switch x := v.Interface().(type) {
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case uint32:
		return float64(x)
	case uint64:
		return float64(x)
	case float32:
		return float64(x)
	case float64:
		return x
	case protoreflect.Message: // Duration or Timestamp: seconds and nanos
		secs, _ := intOf(x, "seconds")
		nanos, _ := intOf(x, "nanos")
		return float64(secs) + float64(nanos)/1e9
	}
	return 0
}

// predefinedWords is a predefined rule set on a field: its name, the value
// it is set to (unless true) and the messages of its CEL rules.
func (r *Rules) predefinedWords(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	name := code(string(fd.FullName()))
	if !(fd.Kind() == protoreflect.BoolKind && !fd.IsList() && v.Bool()) {
		name += " = " + formatValue(fd, v)
	}
	var rules []string
	for _, rule := range r.Predefined(fd) {
		rules = append(rules, rule.Words())
	}
	if len(rules) == 0 {
		return name
	}
	return name + ": " + strings.Join(rules, ", ")
}

// celRules reads the repeated buf.validate.Rule field name of m.
func celRules(m protoreflect.Message, name protoreflect.Name) []CELRule {
	var rules []CELRule
	for _, v := range listOf(m, name) {
		rule := v.Message()
		id, _ := stringOf(rule, "id")
		message, _ := stringOf(rule, "message")
		expression, _ := stringOf(rule, "expression")
		rules = append(rules, CELRule{ID: id, Message: message, Expression: expression})
	}
	return rules
}

// phraseFor looks key up in ruleWords and fills in args. A key missing from
// the table (a rule of a newer protovalidate) still shows, as its key and
// arguments, rather than disappearing; TestEveryRuleHasWords keeps the
// table complete for the pinned protovalidate.
func phraseFor(key string, args ...any) string {
	format, ok := ruleWords[key]
	if !ok {
		if len(args) == 0 {
			return code(key)
		}
		return fmt.Sprintf("%s = %v", code(key), joinArgs(args))
	}
	return fmt.Sprintf(format, args...)
}

func joinArgs(args []any) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = fmt.Sprint(a)
	}
	return strings.Join(parts, ", ")
}

// formatValue writes a rule's value as the contract author would read it:
// numbers as numbers, durations as Go durations ("10s"), timestamps in
// RFC 3339, strings and bytes quoted in code, lists comma-separated.
func formatValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	if fd.IsList() {
		list := v.List()
		parts := make([]string, list.Len())
		for i := range list.Len() {
			parts[i] = formatScalar(fd, list.Get(i))
		}
		return strings.Join(parts, ", ")
	}
	return formatScalar(fd, v)
}

func formatScalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return code(strconv.Quote(v.String()))
	case protoreflect.BytesKind:
		return code(strconv.Quote(string(v.Bytes())))
	case protoreflect.FloatKind:
		return strconv.FormatFloat(v.Float(), 'g', -1, 32)
	case protoreflect.DoubleKind:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case protoreflect.EnumKind:
		if value := fd.Enum().Values().ByNumber(v.Enum()); value != nil {
			return code(string(value.Name()))
		}
		return strconv.Itoa(int(v.Enum()))
	case protoreflect.MessageKind, protoreflect.GroupKind:
		m := v.Message()
		switch m.Descriptor().FullName() {
		case "google.protobuf.Duration":
			secs, _ := intOf(m, "seconds")
			nanos, _ := intOf(m, "nanos")
			return (time.Duration(secs)*time.Second + time.Duration(nanos)).String()
		case "google.protobuf.Timestamp":
			secs, _ := intOf(m, "seconds")
			nanos, _ := intOf(m, "nanos")
			return time.Unix(secs, nanos).UTC().Format(time.RFC3339Nano)
		case "google.protobuf.FieldMask":
			var paths []string
			for _, p := range listOf(m, "paths") {
				paths = append(paths, p.String())
			}
			return code(strings.Join(paths, ","))
		}
		return code(string(m.Descriptor().FullName()))
	}
	return fmt.Sprint(v.Interface())
}

// code is s as Markdown inline code, fenced so that a backquote in s
// cannot end it.
func code(s string) string {
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

func listOf(m protoreflect.Message, name protoreflect.Name) []protoreflect.Value {
	fd := m.Descriptor().Fields().ByName(name)
	if fd == nil || !fd.IsList() {
		return nil
	}
	list := m.Get(fd).List()
	values := make([]protoreflect.Value, list.Len())
	for i := range values {
		values[i] = list.Get(i)
	}
	return values
}

func boolOf(m protoreflect.Message, name protoreflect.Name) (bool, bool) {
	fd := m.Descriptor().Fields().ByName(name)
	if fd == nil || fd.Kind() != protoreflect.BoolKind || !m.Has(fd) {
		return false, false
	}
	return m.Get(fd).Bool(), true
}

func stringOf(m protoreflect.Message, name protoreflect.Name) (string, bool) {
	fd := m.Descriptor().Fields().ByName(name)
	if fd == nil || fd.Kind() != protoreflect.StringKind || !m.Has(fd) {
		return "", false
	}
	return m.Get(fd).String(), true
}

func intOf(m protoreflect.Message, name protoreflect.Name) (int64, bool) {
	fd := m.Descriptor().Fields().ByName(name)
	if fd == nil || !m.Has(fd) {
		return 0, false
	}
	switch x := m.Get(fd).Interface().(type) {
	case int32:
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}
