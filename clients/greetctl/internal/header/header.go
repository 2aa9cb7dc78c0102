// Package header parses the -H/--header flag values into gRPC request
// metadata.
package header

import (
	"fmt"
	"strings"

	"google.golang.org/grpc/metadata"
)

// Format documents the accepted syntax, for flag help and errors.
const Format = `"key: value"`

// Parse turns "key: value" strings into metadata. Keys are case-insensitive
// and stored lower-case, as HTTP/2 requires; white space around the value is
// dropped. A key may repeat, giving several values. Keys ending in "-bin"
// carry arbitrary bytes, which gRPC base64-encodes on the wire.
func Parse(values []string) (metadata.MD, error) {
	md := metadata.MD{}
	for _, v := range values {
		key, value, ok := strings.Cut(v, ":")
		key = strings.ToLower(strings.TrimSpace(key))
		if !ok || key == "" {
			return nil, fmt.Errorf("malformed header %q: want %s", v, Format)
		}
		if err := validKey(key); err != nil {
			return nil, fmt.Errorf("malformed header %q: %w", v, err)
		}
		value = strings.TrimSpace(value)
		if !strings.HasSuffix(key, "-bin") {
			for _, r := range value {
				// gRPC only carries printable ASCII in text metadata.
				if r < 0x20 || r > 0x7e {
					return nil, fmt.Errorf("malformed header %q: value may only contain printable ASCII; use a key ending in -bin for binary values", v)
				}
			}
		}
		md.Append(key, value)
	}
	return md, nil
}

func validKey(key string) error {
	if strings.HasPrefix(key, "grpc-") {
		return fmt.Errorf("keys starting with grpc- are reserved for gRPC itself")
	}
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return fmt.Errorf("key may only contain letters, digits, '-', '_' and '.', not %q", r)
		}
	}
	return nil
}
