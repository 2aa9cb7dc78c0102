// Package flagname declares the name of each global greetctl flag once. The
// flag's definition, its GREETCTL_ environment variable and config file
// key, and every message and help text that names it derive from these.
package flagname

// Name is a long flag name as pflag knows it: "addr".
type Name string

// String is the flag as typed on the command line: "--addr".
func (n Name) String() string { return "--" + string(n) }

// Shorthand is a one-letter flag name as pflag knows it: "H".
type Shorthand string

// String is the flag as typed on the command line: "-H".
func (s Shorthand) String() string { return "-" + string(s) }

// The global flags, which every command accepts.
const (
	Config             Name = "config"
	Addr               Name = "addr"
	Timeout            Name = "timeout"
	Header             Name = "header"
	UserAgent          Name = "user-agent"
	NoRetry            Name = "no-retry"
	WaitForReady       Name = "wait-for-ready"
	Plaintext          Name = "plaintext"
	TLS                Name = "tls"
	CA                 Name = "ca"
	Cert               Name = "cert"
	Key                Name = "key"
	ServerName         Name = "server-name"
	InsecureSkipVerify Name = "insecure-skip-verify"
	Output             Name = "output"
	Verbose            Name = "verbose"
	Classic            Name = "classic"
	Traceparent        Name = "traceparent"
)

// Shorthands of the global flags.
const (
	HeaderShort  Shorthand = "H"
	OutputShort  Shorthand = "o"
	VerboseShort Shorthand = "v"
)
