package apidoc

// ruleWords is the one table that turns a protovalidate rule into words,
// for every field, RPC document and index this package writes. A key is
// "<kind>.<rule>": kind is the field's name in FieldRules' type oneof
// ("string", "int32", "duration", ...), rule the field of its rules message
// (a flag's key is the rule alone, an enum rule's key ends in the enum
// value's name). Rules of FieldRules itself, oneofs and messages have keys
// of their own ("required", "ignore.<value>", "oneof.required",
// "message.oneof"). A value is a fmt format with one %s per argument.
//
// TestEveryRuleHasWords fails when the pinned protovalidate has a rule this
// table lacks.
var ruleWords = func() map[string]string {
	words := map[string]string{
		"required":                    "required",
		"ignore.IGNORE_UNSPECIFIED":   "validated when set, and when unset if required",
		"ignore.IGNORE_IF_ZERO_VALUE": "optional: the rules apply only to a value other than the zero value",
		"ignore.IGNORE_ALWAYS":        "never validated",
		"oneof.required":              "exactly one field of the oneof is set",
		"message.oneof":               "at most one of %s is set",
		"message.oneof.required":      "exactly one of %s is set",
		"range.inclusive":             "from %s to %s",

		"bool.const":   "exactly %s",
		"bool.example": "for example %s",

		"string.const":               "exactly %s",
		"string.len":                 "exactly %s characters",
		"string.min_len":             "at least %s characters",
		"string.max_len":             "at most %s characters",
		"string.len_bytes":           "exactly %s bytes (UTF-8)",
		"string.min_bytes":           "at least %s bytes (UTF-8)",
		"string.max_bytes":           "at most %s bytes (UTF-8)",
		"string.pattern":             "matches the regular expression (RE2) %s",
		"string.prefix":              "starts with %s",
		"string.suffix":              "ends with %s",
		"string.contains":            "contains %s",
		"string.not_contains":        "does not contain %s",
		"string.in":                  "one of %s",
		"string.not_in":              "none of %s",
		"string.email":               "an email address",
		"string.hostname":            "a hostname",
		"string.ip":                  "an IP address (v4 or v6)",
		"string.ipv4":                "an IPv4 address",
		"string.ipv6":                "an IPv6 address",
		"string.uri":                 "an absolute URI",
		"string.uri_ref":             "a URI reference (absolute or relative)",
		"string.address":             "a hostname or an IP address",
		"string.uuid":                "a UUID (RFC 4122, with dashes)",
		"string.tuuid":               "a UUID without dashes (32 hex digits)",
		"string.ip_with_prefixlen":   "an IP address with a prefix length",
		"string.ipv4_with_prefixlen": "an IPv4 address with a prefix length",
		"string.ipv6_with_prefixlen": "an IPv6 address with a prefix length",
		"string.ip_prefix":           "an IP network prefix",
		"string.ipv4_prefix":         "an IPv4 network prefix",
		"string.ipv6_prefix":         "an IPv6 network prefix",
		"string.host_and_port":       "a host and a port (host:port)",
		"string.ulid":                "a ULID",
		"string.protobuf_fqn":        "a fully-qualified Protobuf name",
		"string.protobuf_dot_fqn":    "a fully-qualified Protobuf name with a leading dot",
		"string.well_known_regex.KNOWN_REGEX_UNSPECIFIED":       "no well-known pattern",
		"string.well_known_regex.KNOWN_REGEX_HTTP_HEADER_NAME":  "an HTTP header name",
		"string.well_known_regex.KNOWN_REGEX_HTTP_HEADER_VALUE": "an HTTP header value",
		"string.strict":  "strict HTTP header rules: %s",
		"string.example": "for example %s",

		"bytes.const":    "exactly %s",
		"bytes.len":      "exactly %s bytes",
		"bytes.min_len":  "at least %s bytes",
		"bytes.max_len":  "at most %s bytes",
		"bytes.pattern":  "matches the regular expression (RE2) %s",
		"bytes.prefix":   "starts with %s",
		"bytes.suffix":   "ends with %s",
		"bytes.contains": "contains %s",
		"bytes.in":       "one of %s",
		"bytes.not_in":   "none of %s",
		"bytes.ip":       "an IP address in network byte order (4 or 16 bytes)",
		"bytes.ipv4":     "an IPv4 address in network byte order (4 bytes)",
		"bytes.ipv6":     "an IPv6 address in network byte order (16 bytes)",
		"bytes.uuid":     "a UUID (16 bytes)",
		"bytes.example":  "for example %s",

		"enum.const":        "exactly %s",
		"enum.defined_only": "one of the enum's defined values",
		"enum.in":           "one of %s",
		"enum.not_in":       "none of %s",
		"enum.example":      "for example %s",

		"repeated.min_items": "at least %s items",
		"repeated.max_items": "at most %s items",
		"repeated.unique":    "items are unique",
		"repeated.items":     "each item: %s",

		"map.min_pairs": "at least %s entries",
		"map.max_pairs": "at most %s entries",
		"map.keys":      "each key: %s",
		"map.values":    "each value: %s",

		"any.in":     "holds one of the types %s",
		"any.not_in": "holds none of the types %s",

		"field_mask.const":   "exactly the paths %s",
		"field_mask.in":      "only paths among %s",
		"field_mask.not_in":  "no path among %s",
		"field_mask.example": "for example %s",

		"timestamp.lt_now": "in the past",
		"timestamp.gt_now": "in the future",
		"timestamp.within": "within %s of now",
	}
	// Every ordered kind compares alike: numbers, durations, timestamps.
	ordered := []string{
		"float", "double", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
		"fixed32", "fixed64", "sfixed32", "sfixed64", "duration", "timestamp",
	}
	for _, kind := range ordered {
		words[kind+".const"] = "exactly %s"
		words[kind+".gt"] = "greater than %s"
		words[kind+".gte"] = "at least %s"
		words[kind+".lt"] = "less than %s"
		words[kind+".lte"] = "at most %s"
		words[kind+".example"] = "for example %s"
		if kind != "timestamp" {
			words[kind+".in"] = "one of %s"
			words[kind+".not_in"] = "none of %s"
		}
	}
	words["float.finite"] = "finite (not infinite, not NaN)"
	words["double.finite"] = "finite (not infinite, not NaN)"
	return words
}()
