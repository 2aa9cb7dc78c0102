// Package output prints command results in the format chosen with -o: text
// for people, JSON or YAML for programs.
package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Format is an output format.
type Format string

// The output formats.
const (
	// Text is for people: one line per result, no field names.
	Text Format = "text"
	// JSON is protojson (lowerCamelCase field names, 64-bit integers as
	// strings), one object per line, so a stream is newline-delimited JSON.
	JSON Format = "json"
	// YAML is the same document as JSON in YAML, one document per result,
	// separated by "---".
	YAML Format = "yaml"
)

// Formats lists the valid values of -o, for help and error messages.
const Formats = "text, json or yaml"

// ParseFormat validates the value of -o.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case Text, JSON, YAML:
		return f, nil
	default:
		return "", fmt.Errorf("unknown output format %q: want %s", s, Formats)
	}
}

// Printer writes results to one writer in one format. It is not safe for
// concurrent use.
type Printer struct {
	w       io.Writer
	format  Format
	printed int
}

// New returns a Printer writing format to w.
func New(w io.Writer, format Format) *Printer {
	return &Printer{w: w, format: format}
}

// Print writes one result: text in Text format, v otherwise. A protobuf
// message is encoded with protojson, any other value with encoding/json.
func (p *Printer) Print(v any, text string) error {
	var out []byte
	switch p.format {
	case Text:
		out = []byte(text + "\n")
	case JSON:
		data, err := compactJSON(v)
		if err != nil {
			return err
		}
		out = append(data, '\n')
	case YAML:
		data, err := compactJSON(v)
		if err != nil {
			return err
		}
		if out, err = jsonToYAML(data); err != nil {
			return err
		}
		if p.printed > 0 {
			out = append([]byte("---\n"), out...)
		}
	default:
		return fmt.Errorf("unknown output format %q", p.format)
	}
	p.printed++
	if _, err := p.w.Write(out); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// compactJSON encodes v on one line. protojson varies its spacing on
// purpose so that nobody depends on it; compacting makes it stable.
func compactJSON(v any) ([]byte, error) {
	var data []byte
	var err error
	if m, ok := v.(proto.Message); ok {
		data, err = protojson.Marshal(m)
	} else {
		data, err = json.Marshal(v)
	}
	if err != nil {
		return nil, fmt.Errorf("encode output: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, fmt.Errorf("encode output: %w", err)
	}
	return buf.Bytes(), nil
}

// jsonToYAML re-encodes a JSON document as block-style YAML. JSON is YAML,
// so decoding it into a yaml.Node keeps the field order; only the flow
// style has to go.
func jsonToYAML(data []byte) ([]byte, error) {
	var doc any
	var node yaml.Node
	if err := yaml.Unmarshal(data, &node); err == nil {
		clearStyle(&node)
		doc = &node
	} else if err := json.Unmarshal(data, &doc); err != nil {
		// YAML refuses some strings JSON allows (control characters);
		// decoding as JSON loses the field order but not the data.
		return nil, fmt.Errorf("encode output as YAML: %w", err)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode output as YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode output as YAML: %w", err)
	}
	return buf.Bytes(), nil
}

func clearStyle(n *yaml.Node) {
	// Keep quoting of strings that would otherwise read as another type,
	// e.g. int64 values that protojson writes as "3": the encoder re-quotes
	// them when needed, so only the flow style has to be cleared.
	n.Style &^= yaml.FlowStyle
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		n.Style &^= yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle
	}
	for _, c := range n.Content {
		clearStyle(c)
	}
}
