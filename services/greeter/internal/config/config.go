// Package config reads the server's configuration from command-line flags
// and GREETER_* environment variables, and validates it before anything
// starts.
//
// Each setting is declared once, in settings: its flag (and from it its
// environment variable), the Config field it fills, its default (the
// server's own Default* constant where it becomes a server option), its
// help, its bounds and the server option it becomes. Parsing, --help,
// validation (through server.CheckOption, so a setting and its option
// cannot disagree on bounds) and ServerOptions are derived from the
// declarations.
//
// Flags are the standard library's package flag, environment variables a
// loop over its flags: none of the libraries we weighed keeps the
// command line the greeter has shipped with. pflag and cobra (greetctl's)
// refuse single-dash long flags (-drain-timeout=4s) and format --help
// their own way; kong takes settings from struct tags, which cannot hold a
// default that is a constant of another package or help that quotes one;
// peterbourgon/ff/v3, closest, reads an environment variable for every
// flag, --version's too (GREETER_VERSION belongs to deployments), and
// words its errors without the flag's --name. What they would save here is
// the twenty lines of Parse that apply the environment.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is the server's whole configuration.
type Config struct {
	GRPCAddr    string
	MetricsAddr string // empty disables the admin HTTP server

	// The HTTP port: HTTPAddr empty disables it;
	// CORSAllowedOrigins is the comma-separated list of origins browsers
	// may call it from ("*" any, empty no CORS): AllowedOrigins.
	HTTPAddr           string
	CORSAllowedOrigins string

	LogLevel  slog.Level
	LogFormat string // "text" or "json"

	Reflection bool
	// Pprof serves net/http/pprof on the admin HTTP server.
	Pprof bool

	DrainTimeout time.Duration
	DrainDelay   time.Duration

	TLSCert     string
	TLSKey      string
	TLSClientCA string

	MaxRecvMsgSize       int
	MaxSendMsgSize       int
	MaxConcurrentStreams uint
	StreamWorkers        uint
	ConnectionTimeout    time.Duration

	// Overload limits (see the server's options): 0 derives a limit from
	// MemoryLimit, itself the cgroup's limit when 0.
	MemoryLimit             int64
	MaxRPCMemory            int64
	MaxRPCMemoryPerClient   int64
	MaxHealthStreams        int
	MaxConnections          int
	MaxConnectionsPerClient int
	FirstMessageTimeout     time.Duration
	SendStallTimeout        time.Duration

	KeepaliveTime           time.Duration
	KeepaliveTimeout        time.Duration
	MaxConnectionIdle       time.Duration
	MaxConnectionAge        time.Duration
	MaxConnectionAgeGrace   time.Duration
	KeepaliveMinTime        time.Duration
	KeepalivePermitNoStream bool

	// RateLimit is the RPCs per second each client may start; 0 disables
	// rate limiting. RateLimitBurst is how many at once (0: RateLimit
	// rounded up).
	RateLimit      float64
	RateLimitBurst int

	// TraceMessageEvents adds a span event per message to each RPC's span,
	// TraceHealthAndReflection traces health and reflection calls too; both
	// only matter when the OTEL_* environment turns tracing on (package
	// tracing).
	TraceMessageEvents       bool
	TraceHealthAndReflection bool

	// Version asks for the build version to be printed instead of serving.
	Version bool

	// logLevelText is a --log-level that names no level, for validation to
	// report.
	logLevelText string
}

// EnvPrefix prefixes the environment variable of every flag:
// --grpc-addr is GREETER_GRPC_ADDR.
const EnvPrefix = "GREETER_"

// EnvName is the environment variable that sets flag name.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// flagName is a flag's name, declared once below: the flag, its
// environment variable and every message about it are derived from it.
type flagName string

// String is the flag as typed on the command line, for messages and help:
// --grpc-addr.
func (n flagName) String() string { return "--" + string(n) }

// env is the flag's environment variable: GREETER_GRPC_ADDR.
func (n flagName) env() string { return EnvName(string(n)) }

// The flags of the server.
const (
	flagGRPCAddr                flagName = "grpc-addr"
	flagMetricsAddr             flagName = "metrics-addr"
	flagHTTPAddr                flagName = "http-addr"
	flagCORSAllowedOrigins      flagName = "cors-allowed-origins"
	flagLogLevel                flagName = "log-level"
	flagLogFormat               flagName = "log-format"
	flagReflection              flagName = "reflection"
	flagDrainTimeout            flagName = "drain-timeout"
	flagDrainDelay              flagName = "drain-delay"
	flagTLSCert                 flagName = "tls-cert"
	flagTLSKey                  flagName = "tls-key"
	flagTLSClientCA             flagName = "tls-client-ca"
	flagMaxRecvMsgSize          flagName = "max-recv-msg-size"
	flagMaxSendMsgSize          flagName = "max-send-msg-size"
	flagMaxConcurrentStreams    flagName = "max-concurrent-streams"
	flagStreamWorkers           flagName = "stream-workers"
	flagConnectionTimeout       flagName = "connection-timeout"
	flagKeepaliveTime           flagName = "keepalive-time"
	flagKeepaliveTimeout        flagName = "keepalive-timeout"
	flagMaxConnectionIdle       flagName = "max-connection-idle"
	flagMaxConnectionAge        flagName = "max-connection-age"
	flagMaxConnectionAgeGrace   flagName = "max-connection-age-grace"
	flagKeepaliveMinTime        flagName = "keepalive-min-time"
	flagKeepalivePermitNoStream flagName = "keepalive-permit-without-stream"
	flagPprof                   flagName = "pprof"
	flagRateLimit               flagName = "rate-limit"
	flagRateLimitBurst          flagName = "rate-limit-burst"
	flagMemoryLimit             flagName = "memory-limit"
	flagMaxRPCMemory            flagName = "max-rpc-memory"
	flagMaxRPCMemoryPerClient   flagName = "max-rpc-memory-per-client"
	flagMaxHealthStreams        flagName = "max-health-streams"
	flagMaxConnections          flagName = "max-connections"
	flagMaxConnectionsPerClient flagName = "max-connections-per-client"
	flagFirstMessageTimeout     flagName = "first-message-timeout"
	flagSendStallTimeout        flagName = "send-stall-timeout"
	flagTraceMessageEvents      flagName = "trace-message-events"
	flagTraceHealthReflection   flagName = "trace-health-and-reflection"
	// flagVersion is an action, not a setting: it has no environment
	// variable, as deployments commonly use GREETER_VERSION for their own
	// labels.
	flagVersion flagName = "version"
)

// ErrInvalid wraps every configuration error, so callers can tell bad
// configuration (exit 2) from other failures.
var ErrInvalid = errors.New("invalid configuration")

// Parse reads the configuration from args (without the program name) and
// the environment, looked up with lookupEnv (os.LookupEnv in production). A
// flag given on the command line wins over its environment variable, which
// wins over the default. Usage and errors go to output. It returns
// flag.ErrHelp for -h/--help, and an error wrapping ErrInvalid for anything
// else wrong.
func Parse(args []string, lookupEnv func(string) (string, bool), output io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("greeter", flag.ContinueOnError)
	fs.SetOutput(output)

	for _, st := range settings {
		st.define(fs, &c)
	}
	fs.BoolVar(&c.Version, string(flagVersion), false, "print the version and exit")

	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: greeter [flags]\n\n")
		fmt.Fprintf(out, "Serves acme.greeter.v1.GreeterService and helloworld.Greeter over gRPC, and on\n"+
			"--http-addr over Connect, gRPC-Web and gRPC for browsers and HTTP callers.\n")
		fmt.Fprintf(out, "Every flag can also be set by its environment variable; a flag on the\ncommand line wins over the environment.\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			name, usage := flag.UnquoteUsage(f)
			n := flagName(f.Name)
			line := "  " + n.String()
			if name != "" {
				line += " " + name
			}
			if n == flagVersion {
				fmt.Fprintf(out, "%s\n    \t%s\n", line, usage)
				return
			}
			fmt.Fprintf(out, "%s\n    \t%s\n    \tenv %s, default %q\n", line, usage, n.env(), f.DefValue)
		})
		fmt.Fprintf(out, "\nTracing (OpenTelemetry) is off unless OTEL_TRACES_EXPORTER (otlp, console) or\n"+
			"OTEL_EXPORTER_OTLP_ENDPOINT is set; the standard OTEL_* variables configure it\n"+
			"(OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, ...).\n")
		fmt.Fprintf(out, "\nExit codes: 0 clean shutdown, 1 runtime failure, 2 bad configuration.\n")
	}

	// Environment first, so that Parse below lets flags override it.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if flagName(f.Name) == flagVersion {
			return
		}
		env := flagName(f.Name).env()
		v, ok := lookupEnv(env)
		if !ok || envErr != nil {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = fmt.Errorf("%w: %s=%q: %v", ErrInvalid, env, v, err)
		}
	})
	if envErr != nil {
		return Config{}, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, err
		}
		return Config{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("%w: unexpected arguments %q", ErrInvalid, fs.Args())
	}
	if c.Version {
		return c, nil
	}
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return c, nil
}

// validate checks every setting against its bounds (settings), then the
// settings that go together.
func (c *Config) validate() error {
	var errs []error
	for _, st := range settings {
		if err := st.check(c); err != nil {
			errs = append(errs, err)
		}
	}
	if c.MetricsAddr != "" && c.MetricsAddr == c.GRPCAddr && !strings.HasSuffix(c.GRPCAddr, ":0") {
		errs = append(errs, fmt.Errorf("%s must differ from %s: metrics never share the gRPC port", flagMetricsAddr, flagGRPCAddr))
	}
	if c.HTTPAddr != "" && !strings.HasSuffix(c.HTTPAddr, ":0") && (c.HTTPAddr == c.GRPCAddr || c.HTTPAddr == c.MetricsAddr) {
		errs = append(errs, fmt.Errorf("%s %q must differ from %s and %s", flagHTTPAddr, c.HTTPAddr, flagGRPCAddr, flagMetricsAddr))
	}
	if c.RateLimitBurst > 0 && c.RateLimit == 0 {
		errs = append(errs, fmt.Errorf("%s needs %s", flagRateLimitBurst, flagRateLimit))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, fmt.Errorf("%s and %s go together", flagTLSCert, flagTLSKey))
	}
	if c.TLSClientCA != "" && c.TLSCert == "" {
		errs = append(errs, fmt.Errorf("%s needs %s and %s: mutual TLS is TLS first", flagTLSClientCA, flagTLSCert, flagTLSKey))
	}
	return errors.Join(errs...)
}

// checkAddr accepts host:port with a numeric port, or a port only (":50051").
// Host names are resolved when listening, not here.
func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// AllowedOrigins is CORSAllowedOrigins as a list, empty items dropped.
func (c Config) AllowedOrigins() []string {
	var items []string
	for item := range strings.SplitSeq(c.CORSAllowedOrigins, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// checkOrigins accepts a comma-separated list of "*" or origins as
// browsers send them: scheme://host[:port], nothing after.
func checkOrigins(list string) error {
	var errs []error
	for _, origin := range (Config{CORSAllowedOrigins: list}).AllowedOrigins() {
		if origin == "*" {
			continue
		}
		u, err := url.Parse(origin)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			errs = append(errs, fmt.Errorf("%q: want an origin as browsers send it, scheme://host[:port] (https://app.example.com), or *", origin))
		case u.Path == "/":
			errs = append(errs, fmt.Errorf("%q: an origin has no path; drop the trailing /", origin))
		}
	}
	return errors.Join(errs...)
}
