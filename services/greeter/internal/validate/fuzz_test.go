package validate

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	greeterv1 "github.com/acme/greeter/gen/go/acme/greeter/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// nameRules is the contract's name rules written out by hand (required and
// max_len on each field of api/acme/greeter/v1/greeter.proto, the rest in
// the predefined rule of name_rules.proto), for valid UTF-8: the rule ids a
// name breaks. "Blank" is RE2's \s (tab, LF, FF, CR, space) and Unicode Z.
func nameRules(name string) []string {
	if name == "" {
		return []string{"required"}
	}
	var broken []string
	if utf8.RuneCountInString(name) > 100 {
		broken = append(broken, "string.max_len")
	}
	blank, control := true, false
	for _, r := range name {
		if !strings.ContainsRune("\t\n\f\r ", r) && !unicode.Is(unicode.Z, r) {
			blank = false
		}
		if unicode.Is(unicode.Cc, r) {
			control = true
		}
	}
	if blank {
		broken = append(broken, "name.not_blank")
	}
	if control {
		broken = append(broken, "name.no_control_characters")
	}
	return broken
}

// violations is the sorted "field/rule" list of err, which must be nil or
// INVALID_ARGUMENT with a BadRequest detail whose violations all have a
// description.
func violations(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("code %v (%v), want InvalidArgument", st.Code(), err)
	}
	var out []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				if fv.GetDescription() == "" {
					t.Fatalf("violation without description: %v", fv)
				}
				out = append(out, fv.GetField()+"/"+fv.GetReason())
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("InvalidArgument without BadRequest violations: %v", err)
	}
	slices.Sort(out)
	return out
}

func want(field string, rules []string) []string {
	var out []string
	for _, r := range rules {
		out = append(out, field+"/"+r)
	}
	slices.Sort(out)
	return out
}

var nameSeeds = []string{
	"Ada", "", " ", " \t\u00a0\u2003", "Ada\x00", "A\nda", "\u0085", "\u200b", "\ufeff",
	strings.Repeat("é", 100), strings.Repeat("é", 101), "\x1b[31m", "\xff", "Zoë", "\u2028",
}

// FuzzValidateName checks every request type with a name against the rules
// written out by hand: the same rule ids, and nothing but INVALID_ARGUMENT.
func FuzzValidateName(f *testing.F) {
	v, err := New()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range nameSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		msgs := []proto.Message{
			&greeterv1.SayHelloRequest{Name: name},
			&greeterv1.SayHelloAgainRequest{Name: name},
			&greeterv1.SayHelloStreamRequest{Name: name, Count: 1},
			&greeterv1.SayHelloToAllRequest{Name: name},
			&greeterv1.SayHelloChatRequest{Name: name},
		}
		var first []string
		for i, m := range msgs {
			got := violations(t, v.Check(m))
			if i == 0 {
				first = got
			} else if !slices.Equal(got, first) {
				t.Fatalf("%T: %v, but SayHelloRequest: %v", m, got, first)
			}
		}
		if !utf8.ValidString(name) {
			// Cannot arrive over the wire (the codec rejects it); only
			// "no panic, no other code" is asked of it here.
			return
		}
		if w := want("name", nameRules(name)); !slices.Equal(first, w) {
			t.Fatalf("Check(%q) = %v, want %v", name, first, w)
		}
	})
}

// FuzzValidateStream checks SayHelloStream's count and interval bounds.
func FuzzValidateStream(f *testing.F) {
	v, err := New()
	if err != nil {
		f.Fatal(err)
	}
	f.Add("Ada", int32(1), int64(0), int32(0), true)
	f.Add("Ada", int32(10000), int64(10), int32(0), true)
	f.Add("Ada", int32(10001), int64(10), int32(1), true)
	f.Add("", int32(0), int64(-1), int32(0), true)
	f.Add("Ada", int32(-5), int64(0), int32(-1), true)
	f.Add("Ada", int32(3), int64(0), int32(0), false)
	f.Add("Ada", int32(3), int64(315576000000), int32(999999999), true)
	f.Fuzz(func(t *testing.T, name string, count int32, secs int64, nanos int32, hasInterval bool) {
		req := &greeterv1.SayHelloStreamRequest{Name: name, Count: count}
		if hasInterval {
			req.Interval = &durationpb.Duration{Seconds: secs, Nanos: nanos}
		}
		got := violations(t, v.Check(req))
		if !utf8.ValidString(name) {
			return
		}
		w := want("name", nameRules(name))
		if count < 1 || count > 10000 {
			w = append(w, "count/int32.gte_lte")
		}
		if hasInterval {
			d := req.GetInterval()
			switch {
			case d.CheckValid() != nil:
				// protovalidate compares the fields as a duration even when
				// they are out of range or of mixed sign; only assert that
				// the interval is reported, or not, consistently below.
				if slices.Contains(got, "interval/duration.gte_lte") {
					w = append(w, "interval/duration.gte_lte")
				}
			case d.AsDuration() < 0 || d.AsDuration() > 10*time.Second:
				w = append(w, "interval/duration.gte_lte")
			}
		}
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Fatalf("Check(%v) = %v, want %v", req, got, w)
		}
	})
}

// FuzzDecode feeds arbitrary bytes to the server codec for every request
// type: Unmarshal never fails (gRPC would answer INTERNAL); bytes that
// protobuf rejects come out of the interceptor path as INVALID_ARGUMENT
// with a reason, and bytes it accepts decode exactly as proto.Unmarshal
// does. Nothing stays recorded.
func FuzzDecode(f *testing.F) {
	v, err := New()
	if err != nil {
		f.Fatal(err)
	}
	c := v.serverCodec()
	for _, seed := range [][]byte{
		{0x0a, 0x03, 'A', 'd', 'a'},
		{0x0a, 0x02, 0xff, 0xfe},
		{0x0a, 0x09, 'A'},
		{0x0a, 0x03, 'A', 'd', 'a', 0x10, 0x02, 0x1a, 0x02, 0x08, 0x01},
		{0x1a, 0x01, 0x08},
		{0x00},
		{0x0c},
		{},
	} {
		f.Add(seed)
	}
	news := []func() proto.Message{
		func() proto.Message { return &greeterv1.SayHelloRequest{} },
		func() proto.Message { return &greeterv1.SayHelloStreamRequest{} },
		func() proto.Message { return &greeterv1.SayHelloToAllRequest{} },
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, newMsg := range news {
			msg, ref := newMsg(), newMsg()
			refErr := proto.Unmarshal(data, ref)
			if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(data)}, msg); err != nil {
				t.Fatalf("codec Unmarshal: %v", err)
			}
			derr := v.decodeFailure(msg)
			if (refErr == nil) != (derr == nil) {
				t.Fatalf("%T %x: proto.Unmarshal %v, codec %v", msg, data, refErr, derr)
			}
			if derr != nil {
				got := violations(t, derr)
				if len(got) != 1 || (!strings.HasSuffix(got[0], "/"+ReasonMalformed) && !strings.HasSuffix(got[0], "/"+ReasonInvalidUTF8)) {
					t.Fatalf("%T %x: violations %v", msg, data, got)
				}
				if !proto.Equal(msg, newMsg()) {
					t.Fatalf("undecodable message not reset: %v", msg)
				}
			} else if !proto.Equal(msg, ref) {
				t.Fatalf("%T %x: codec decoded %v, proto %v", msg, data, msg, ref)
			}
			if v.decodeFailure(msg) != nil {
				t.Fatal("decode failure recorded twice")
			}
		}
	})
}
