package validate

import (
	"unicode"
	"unicode/utf8"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/acme/greeter/services/greeter/internal/readmostly"
)

// A native fast path for requests that pass.
//
// protovalidate evaluates the name rules, CEL programs of the predefined
// rule acme.greeter.v1.person_name, on every name, allocating each time: a
// large share of the server's CPU per call and per client-stream message
// (docs/performance.md, "Figures behind the code").
// protovalidate-go compiles its standard rules (required, max_len, gte ...)
// to native code but has no such path for predefined CEL rules, and a CEL
// expression without `matches` would still run the CEL interpreter and
// would change the contract every other team's validator reads.
//
// So Check first asks nativeRules whether a message certainly passes. It
// answers from the rules in the message's descriptor, read once per
// message type, and it only answers "passes": a message it cannot vouch
// for — one that breaks a rule, or has a rule or a value it does not
// handle natively — goes to protovalidate, which produces the violations.
// Every error a client sees is protovalidate's; the fast path is sound as
// long as "passes" implies that protovalidate finds no violation, which
// FuzzNativeRules checks against protovalidate itself.
//
// It handles exactly what the contract uses, and a message type with
// anything else gets no fast path at all:
//   - string fields: required, max_len, and predefined rules whose CEL
//     rules are all in nativePredefined (id and expression alike);
//   - int32 fields: gte and lte;
//   - message fields: no rule decides anything while they are unset; a
//     message with one set goes to protovalidate.

// nativeRules holds the fast-path plan of each message type seen.
type nativeRules struct {
	// plans maps a message descriptor to its plan (nil: no fast path): a
	// server sees a handful of request types, each added once.
	plans readmostly.Map[protoreflect.MessageDescriptor, *plan]
}

// passes reports whether msg certainly satisfies its rules. false means
// "ask protovalidate", not "invalid".
func (n *nativeRules) passes(msg proto.Message) bool {
	return n.passesWith(nil, msg)
}

// planCache remembers the plan of the last message type it was used for:
// a stream receives messages of one type.
type planCache struct {
	md protoreflect.MessageDescriptor
	p  *plan
}

// passesWith is passes, with the plan from c when msg is of c's type (c
// may be nil).
func (n *nativeRules) passesWith(c *planCache, msg proto.Message) bool {
	m := msg.ProtoReflect()
	var p *plan
	switch md := m.Descriptor(); {
	case c == nil:
		p = n.plan(md)
	case c.md == md:
		p = c.p
	default:
		p = n.plan(md)
		c.md, c.p = md, p
	}
	if p == nil {
		return false
	}
	for i := range p.fields {
		if !p.fields[i].passes(m) {
			return false
		}
	}
	return true
}

func (n *nativeRules) plan(md protoreflect.MessageDescriptor) *plan {
	if p, ok := n.plans.Load(md); ok {
		return p
	}
	return n.plans.LoadOrMake(md, func() *plan { return newPlan(md) })
}

// plan is how to vouch for one message type: a check per field with rules.
type plan struct {
	fields []fieldCheck
}

// fieldCheck checks one field.
type fieldCheck struct {
	fd protoreflect.FieldDescriptor
	// unsetOnly: the field has rules only for when it is set (a message
	// field), so it passes while unset and is left to protovalidate when set.
	unsetOnly bool
	// string fields
	required bool
	maxLen   int // runes; -1 for none
	name     []func(string) bool
	// int32 fields
	hasGte, hasLte bool
	gte, lte       int32
}

func (c *fieldCheck) passes(m protoreflect.Message) bool {
	if c.unsetOnly {
		return !m.Has(c.fd)
	}
	v := m.Get(c.fd)
	switch c.fd.Kind() {
	case protoreflect.StringKind:
		s := v.String()
		if s == "" {
			// Empty breaks required; without it, the other rules decide, and
			// protovalidate is asked.
			return false
		}
		// Regular expressions and rune counts read invalid UTF-8
		// differently; such a string cannot come off the wire anyway.
		if !utf8.ValidString(s) {
			return false
		}
		if c.maxLen >= 0 && len(s) > c.maxLen && utf8.RuneCountInString(s) > c.maxLen {
			return false
		}
		for _, ok := range c.name {
			if !ok(s) {
				return false
			}
		}
		return true
	case protoreflect.Int32Kind:
		x := int32(v.Int())
		return (!c.required || x != 0) && (!c.hasGte || x >= c.gte) && (!c.hasLte || x <= c.lte)
	}
	return false
}

// newPlan reads md's rules; it returns nil when any of them, or anything
// else about md, is beyond the fast path.
func newPlan(md protoreflect.MessageDescriptor) *plan {
	if md.ExtensionRanges().Len() > 0 || md.Oneofs().Len() > 0 || hasOption(md.Options(), validatepb.E_Message) {
		return nil
	}
	p := &plan{}
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.IsList() || fd.IsMap() || fd.ContainingOneof() != nil {
			return nil
		}
		if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
			// Set, the field's rules and the nested message's own apply;
			// both are left to protovalidate. Unset, a duration's rules do
			// not apply; only required (not handled here) could fail.
			if hasOption(fd.Options(), validatepb.E_Field) {
				rules := proto.GetExtension(fd.Options(), validatepb.E_Field).(*validatepb.FieldRules)
				if !onlySet(rules.ProtoReflect(), false, "duration") {
					return nil
				}
			}
			p.fields = append(p.fields, fieldCheck{fd: fd, unsetOnly: true})
			continue
		}
		if !hasOption(fd.Options(), validatepb.E_Field) {
			continue // no rules
		}
		c, ok := newFieldCheck(fd)
		if !ok {
			return nil
		}
		p.fields = append(p.fields, c)
	}
	return p
}

// newFieldCheck reads the rules of a scalar field, reporting false for any
// it does not handle.
func newFieldCheck(fd protoreflect.FieldDescriptor) (fieldCheck, bool) {
	c := fieldCheck{fd: fd, maxLen: -1}
	rules := proto.GetExtension(fd.Options(), validatepb.E_Field).(*validatepb.FieldRules)
	if fd.HasPresence() || !onlySet(rules.ProtoReflect(), false, "required", "string", "int32") {
		return c, false
	}
	c.required = rules.GetRequired()
	switch fd.Kind() {
	case protoreflect.StringKind:
		s := rules.GetString()
		if s == nil || !onlySet(s.ProtoReflect(), true, "max_len") {
			return c, false
		}
		if s.MaxLen != nil {
			c.maxLen = int(min(s.GetMaxLen(), 1<<31))
		}
		ok := true
		s.ProtoReflect().Range(func(f protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if !f.IsExtension() {
				return true
			}
			var checks []func(string) bool
			if checks, ok = predefinedString(f, v); ok {
				c.name = append(c.name, checks...)
			}
			return ok
		})
		return c, ok
	case protoreflect.Int32Kind:
		r := rules.GetInt32()
		if r == nil || !onlySet(r.ProtoReflect(), false, "gte", "lte") {
			return c, false
		}
		rr := r.ProtoReflect()
		c.hasGte = rr.Has(rr.Descriptor().Fields().ByName("gte"))
		c.hasLte = rr.Has(rr.Descriptor().Fields().ByName("lte"))
		c.gte, c.lte = r.GetGte(), r.GetLte()
		return c, true
	}
	return c, false
}

// nativePredefined implements CEL rules of predefined string rules, by id
// and expression: each function reports whether a valid UTF-8 string
// passes the rule when the predefined rule is set to true. RE2's \s (what
// CEL's matches uses) is [\t\n\f\r ]; \p{Z} and \p{Cc} are Go's unicode
// tables, which regexp itself uses.
var nativePredefined = map[[2]string]func(string) bool{
	{"name.not_blank", `!rule || !this.matches('^[\\s\\p{Z}]*$')`}:      notBlank,
	{"name.no_control_characters", `!rule || !this.matches('\\p{Cc}')`}: noControlCharacters,
}

// predefinedString returns the native checks of predefined rule f, set to
// v, or false when f is not a bool set to true whose every CEL rule is in
// nativePredefined.
func predefinedString(f protoreflect.FieldDescriptor, v protoreflect.Value) ([]func(string) bool, bool) {
	if f.Kind() != protoreflect.BoolKind || f.Cardinality() == protoreflect.Repeated || !v.Bool() {
		return nil, false
	}
	rules, _ := proto.GetExtension(f.Options(), validatepb.E_Predefined).(*validatepb.PredefinedRules)
	if len(rules.GetCel()) == 0 || len(rules.ProtoReflect().GetUnknown()) > 0 {
		return nil, false
	}
	var checks []func(string) bool
	for _, r := range rules.GetCel() {
		check, ok := nativePredefined[[2]string{r.GetId(), r.GetExpression()}]
		if !ok {
			return nil, false
		}
		checks = append(checks, check)
	}
	return checks, true
}

// notBlank: some character is neither RE2 white space nor a Unicode
// separator.
func notBlank(s string) bool {
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b != '\t' && b != '\n' && b != '\f' && b != '\r' && b != ' ' {
				return true
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if !unicode.Is(unicode.Z, r) {
			return true
		}
		i += n
	}
	return false
}

// noControlCharacters: no character of Unicode category Cc.
func noControlCharacters(s string) bool {
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b < 0x20 || b == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if unicode.Is(unicode.Cc, r) {
			return false
		}
		i += n
	}
	return true
}

// hasOption reports whether options sets extension xt.
func hasOption(options proto.Message, xt protoreflect.ExtensionType) bool {
	return options != nil && proto.HasExtension(options, xt)
}

// onlySet reports whether m sets no field but those named (and
// extensions, the predefined rules, where the caller checks them), and
// nothing unknown.
func onlySet(m protoreflect.Message, extensions bool, names ...protoreflect.Name) bool {
	if len(m.GetUnknown()) > 0 {
		return false
	}
	ok := true
	m.Range(func(f protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if f.IsExtension() {
			ok = extensions
			return ok
		}
		for _, n := range names {
			if f.Name() == n {
				return true
			}
		}
		ok = false
		return false
	})
	return ok
}
