// Package rpcerror renders a failed gRPC call for people: the status code,
// its message and every detail the server attached, one per line, so that a
// user can fix a rejected request without a debugger.
package rpcerror

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Status returns the gRPC status that err carries, looking through
// wrapping, or nil when err did not come from a call.
func Status(err error) *status.Status {
	var gs interface{ GRPCStatus() *status.Status }
	if errors.As(err, &gs) {
		return gs.GRPCStatus()
	}
	return nil
}

// Write renders st to w:
//
//	<prefix>: InvalidArgument: invalid request
//	  name: must contain a character that is not white space
//
// Details are indented under the first line. Debug details never include
// stack entries: a CLI user cannot act on the server's stack.
func Write(w io.Writer, prefix string, st *status.Status) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s: %s\n", prefix, st.Code(), st.Message())
	// Servers often say the same thing twice, e.g. a BadRequest for any
	// client and a buf.validate.Violations for clients that know
	// protovalidate: print each line once.
	seen := map[string]bool{}
	for _, detail := range st.Proto().GetDetails() {
		var d strings.Builder
		writeDetail(&d, detail)
		for line := range strings.Lines(d.String()) {
			if !seen[line] {
				seen[line] = true
				b.WriteString(line)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeDetail(b *strings.Builder, detail *anypb.Any) {
	m, err := detail.UnmarshalNew()
	if err != nil {
		// The server sent a detail type this client does not know; its
		// name is still worth showing.
		fmt.Fprintf(b, "  detail %s (%d bytes, unknown to greetctl)\n", detail.GetTypeUrl(), len(detail.GetValue()))
		return
	}
	switch d := m.(type) {
	case *errdetails.BadRequest:
		for _, v := range d.GetFieldViolations() {
			line := fmt.Sprintf("  %s: %s", v.GetField(), v.GetDescription())
			if v.GetReason() != "" {
				line += fmt.Sprintf(" [%s]", v.GetReason())
			}
			b.WriteString(line + "\n")
		}
	case *validate.Violations:
		for _, v := range d.GetViolations() {
			line := fmt.Sprintf("  %s: %s", fieldPath(v.GetField()), v.GetMessage())
			if v.GetRuleId() != "" {
				line += fmt.Sprintf(" [%s]", v.GetRuleId())
			}
			b.WriteString(line + "\n")
		}
	case *errdetails.ErrorInfo:
		fmt.Fprintf(b, "  reason: %s", d.GetReason())
		if d.GetDomain() != "" {
			fmt.Fprintf(b, " (domain %s)", d.GetDomain())
		}
		b.WriteString(sortedPairs(d.GetMetadata()) + "\n")
	case *errdetails.RetryInfo:
		fmt.Fprintf(b, "  retry after: %s\n", d.GetRetryDelay().AsDuration())
	case *errdetails.DebugInfo:
		if d.GetDetail() != "" {
			fmt.Fprintf(b, "  debug: %s\n", d.GetDetail())
		}
	case *errdetails.QuotaFailure:
		for _, v := range d.GetViolations() {
			fmt.Fprintf(b, "  quota %s: %s\n", v.GetSubject(), v.GetDescription())
		}
	case *errdetails.PreconditionFailure:
		for _, v := range d.GetViolations() {
			fmt.Fprintf(b, "  precondition %s %s: %s\n", v.GetType(), v.GetSubject(), v.GetDescription())
		}
	case *errdetails.ResourceInfo:
		fmt.Fprintf(b, "  resource %s %s", d.GetResourceType(), d.GetResourceName())
		if d.GetDescription() != "" {
			fmt.Fprintf(b, ": %s", d.GetDescription())
		}
		b.WriteString("\n")
	case *errdetails.RequestInfo:
		fmt.Fprintf(b, "  request id: %s\n", d.GetRequestId())
	case *errdetails.Help:
		for _, l := range d.GetLinks() {
			fmt.Fprintf(b, "  help: %s %s\n", l.GetDescription(), l.GetUrl())
		}
	case *errdetails.LocalizedMessage:
		fmt.Fprintf(b, "  message (%s): %s\n", d.GetLocale(), d.GetMessage())
	default:
		fmt.Fprintf(b, "  %s: %s\n", m.ProtoReflect().Descriptor().FullName(), compactJSON(m))
	}
}

// fieldPath spells a protovalidate field path the way BadRequest field
// violations do: "names[2]", "labels[\"env\"]", "interval.seconds".
func fieldPath(p *validate.FieldPath) string {
	var b strings.Builder
	for i, e := range p.GetElements() {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(e.GetFieldName())
		switch s := e.GetSubscript().(type) {
		case *validate.FieldPathElement_Index:
			fmt.Fprintf(&b, "[%d]", s.Index)
		case *validate.FieldPathElement_BoolKey:
			fmt.Fprintf(&b, "[%t]", s.BoolKey)
		case *validate.FieldPathElement_IntKey:
			fmt.Fprintf(&b, "[%d]", s.IntKey)
		case *validate.FieldPathElement_UintKey:
			fmt.Fprintf(&b, "[%d]", s.UintKey)
		case *validate.FieldPathElement_StringKey:
			fmt.Fprintf(&b, "[%q]", s.StringKey)
		}
	}
	return b.String()
}

func sortedPairs(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = k + "=" + m[k]
	}
	return " " + strings.Join(pairs, " ")
}

// compactJSON renders m on one line; protojson output is deliberately
// unstable in its spacing, so it is compacted.
func compactJSON(m proto.Message) string {
	data, err := protojson.Marshal(m)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return string(data)
	}
	return buf.String()
}
