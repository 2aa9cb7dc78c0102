// Package config reads the server's configuration from command-line flags
// and GREETER_* environment variables, and validates it before anything
// starts.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is the server's whole configuration.
type Config struct {
	GRPCAddr    string
	MetricsAddr string // empty disables the admin HTTP server

	// The HTTP port (issue 22): HTTPAddr empty disables it;
	// CORSAllowedOrigins are the origins browsers may call it from, "*"
	// for any, none for no CORS.
	HTTPAddr           string
	CORSAllowedOrigins []string

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

	var logLevel, corsOrigins string
	fs.StringVar(&c.GRPCAddr, string(flagGRPCAddr), ":50051", "`address` the gRPC server listens on (host:port; port 0 picks a free port)")
	fs.StringVar(&c.MetricsAddr, string(flagMetricsAddr), ":9090", "`address` of the admin HTTP server (/metrics, /healthz, /readyz); empty disables it")
	fs.StringVar(&c.HTTPAddr, string(flagHTTPAddr), ":8080", "`address` of the HTTP port: the gRPC services over Connect (JSON, binary, GET), gRPC-Web and gRPC, for browsers and plain HTTP callers, with the gRPC port's TLS and limits; empty disables it")
	fs.StringVar(&corsOrigins, string(flagCORSAllowedOrigins), "", "comma-separated `origins` (https://app.example.com) whose pages may call the HTTP port from a browser, * for any; a request from another origin is refused; empty sends no CORS headers")
	fs.StringVar(&logLevel, string(flagLogLevel), "info", "minimum log `level`: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, string(flagLogFormat), "text", "log `format`: text or json")
	fs.BoolVar(&c.Reflection, string(flagReflection), true, "serve gRPC server reflection (v1 and v1alpha)")
	fs.DurationVar(&c.DrainTimeout, string(flagDrainTimeout), 20*time.Second, "on SIGTERM/SIGINT, how long in-flight RPCs may take to finish before they are cut off")
	fs.DurationVar(&c.DrainDelay, string(flagDrainDelay), 0, "on SIGTERM/SIGINT, how long to keep accepting RPCs while reporting NOT_SERVING, so load balancers notice first")
	fs.StringVar(&c.TLSCert, string(flagTLSCert), "", "PEM certificate `file`; with "+flagTLSKey.String()+" enables TLS (reloaded when it changes)")
	fs.StringVar(&c.TLSKey, string(flagTLSKey), "", "PEM private key `file` of "+flagTLSCert.String())
	fs.StringVar(&c.TLSClientCA, string(flagTLSClientCA), "", "PEM CA `file`; when set, clients must present a certificate it signed (mTLS)")
	fs.IntVar(&c.MaxRecvMsgSize, string(flagMaxRecvMsgSize), 64<<10, "largest message the server accepts, in `bytes`; every RPC in flight is charged this much against "+flagMaxRPCMemory.String())
	fs.IntVar(&c.MaxSendMsgSize, string(flagMaxSendMsgSize), 4<<20, "largest message the server sends, in `bytes`")
	fs.UintVar(&c.MaxConcurrentStreams, string(flagMaxConcurrentStreams), 100, "most concurrent RPCs on one client connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; beyond it, REFUSED_STREAM)")
	fs.UintVar(&c.StreamWorkers, string(flagStreamWorkers), 128, "goroutines kept to run RPCs, so their stacks are reused rather than grown anew per RPC; RPCs beyond them get their own goroutine; 0 gives every RPC a new goroutine")
	fs.DurationVar(&c.ConnectionTimeout, string(flagConnectionTimeout), 10*time.Second, "how long a new connection may take to complete its handshake")
	fs.DurationVar(&c.KeepaliveTime, string(flagKeepaliveTime), time.Minute, "ping a client after this long without activity, to detect dead connections")
	fs.DurationVar(&c.KeepaliveTimeout, string(flagKeepaliveTimeout), 20*time.Second, "close the connection when a ping is not answered within this long")
	fs.DurationVar(&c.MaxConnectionIdle, string(flagMaxConnectionIdle), 0, "close connections idle (no RPC) this long; 0 never")
	fs.DurationVar(&c.MaxConnectionAge, string(flagMaxConnectionAge), 30*time.Minute, "ask clients to reconnect after this long (GOAWAY), so client-side load balancing sees new servers; 0 never")
	fs.DurationVar(&c.MaxConnectionAgeGrace, string(flagMaxConnectionAgeGrace), 5*time.Minute, "after "+flagMaxConnectionAge.String()+", how long RPCs in flight may continue before the connection is closed")
	fs.DurationVar(&c.KeepaliveMinTime, string(flagKeepaliveMinTime), 10*time.Second, "clients pinging more often than this are disconnected (too_many_pings)")
	fs.BoolVar(&c.KeepalivePermitNoStream, string(flagKeepalivePermitNoStream), true, "allow client pings on connections with no RPC in flight")
	fs.BoolVar(&c.Pprof, string(flagPprof), false, "serve Go profiles (net/http/pprof) under /debug/pprof/ on the admin HTTP server; off by default, as profiles reveal internals")
	fs.Float64Var(&c.RateLimit, string(flagRateLimit), 0, "RPCs per second each client (mTLS certificate subject, else IP address) may start; 0 disables rate limiting; health checks are exempt")
	fs.IntVar(&c.RateLimitBurst, string(flagRateLimitBurst), 0, "RPCs a client may start at once under "+flagRateLimit.String()+"; 0 means "+flagRateLimit.String()+" rounded up")
	fs.Int64Var(&c.MemoryLimit, string(flagMemoryLimit), 0, "memory the server plans for, in `bytes`: GOMEMLIMIT is set to 90% of it and the limits left at 0 are derived from it; 0 reads the container's cgroup limit, and without one plans for 268435456 (256 MiB) and leaves GOMEMLIMIT alone")
	fs.Int64Var(&c.MaxRPCMemory, string(flagMaxRPCMemory), 0, "worst-case memory, in `bytes`, of all RPCs in flight (health apart), each charged "+flagMaxRecvMsgSize.String()+" + 96 KiB, + 1.25 MiB if it streams responses; beyond it, UNAVAILABLE; 0 is half of "+flagMemoryLimit.String())
	fs.Int64Var(&c.MaxRPCMemoryPerClient, string(flagMaxRPCMemoryPerClient), 0, "how much of "+flagMaxRPCMemory.String()+" one client (mTLS subject, else IP) may hold, in `bytes`; beyond it, RESOURCE_EXHAUSTED with RetryInfo; 0 is three quarters of "+flagMaxRPCMemory.String())
	fs.IntVar(&c.MaxHealthStreams, string(flagMaxHealthStreams), 64, "most health RPCs in flight, apart from "+flagMaxRPCMemory.String()+" so that probes are answered; one client may hold an eighth")
	fs.IntVar(&c.MaxConnections, string(flagMaxConnections), 0, "most open client connections; one beyond is closed when accepted; 0 is "+flagMemoryLimit.String()+" / 512 KiB")
	fs.IntVar(&c.MaxConnectionsPerClient, string(flagMaxConnectionsPerClient), 0, "most open connections from one IP address; 0 is a quarter of "+flagMaxConnections.String())
	fs.DurationVar(&c.FirstMessageTimeout, string(flagFirstMessageTimeout), 10*time.Second, "cancel an RPC whose first request message has not fully arrived within this long; 0 never")
	fs.DurationVar(&c.SendStallTimeout, string(flagSendStallTimeout), 30*time.Second, "close a connection on which an RPC's send has waited this long for a client that reads nothing; 0 never")
	fs.BoolVar(&c.TraceMessageEvents, string(flagTraceMessageEvents), false, "when tracing is on, add a span event per message sent and received (for streams: one per message)")
	fs.BoolVar(&c.TraceHealthAndReflection, string(flagTraceHealthReflection), false, "when tracing is on, trace grpc.health.v1 and server reflection calls too")
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
	if err := c.LogLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return Config{}, fmt.Errorf("%w: %s %q: want debug, info, warn or error", ErrInvalid, flagLogLevel, logLevel)
	}
	if c.Version {
		return c, nil
	}
	c.CORSAllowedOrigins = splitList(corsOrigins)
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return c, nil
}

func (c *Config) validate() error {
	var errs []error
	if err := checkAddr(c.GRPCAddr); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", flagGRPCAddr, err))
	}
	if c.MetricsAddr != "" {
		if err := checkAddr(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", flagMetricsAddr, err))
		} else if c.MetricsAddr == c.GRPCAddr && !strings.HasSuffix(c.GRPCAddr, ":0") {
			errs = append(errs, fmt.Errorf("%s must differ from %s: metrics never share the gRPC port", flagMetricsAddr, flagGRPCAddr))
		}
	}
	if c.HTTPAddr != "" {
		if err := checkAddr(c.HTTPAddr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", flagHTTPAddr, err))
		} else if !strings.HasSuffix(c.HTTPAddr, ":0") && (c.HTTPAddr == c.GRPCAddr || c.HTTPAddr == c.MetricsAddr) {
			errs = append(errs, fmt.Errorf("%s %q must differ from %s and %s", flagHTTPAddr, c.HTTPAddr, flagGRPCAddr, flagMetricsAddr))
		}
	}
	for _, origin := range c.CORSAllowedOrigins {
		if err := checkOrigin(origin); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", flagCORSAllowedOrigins, err))
		}
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("%s %q: want text or json", flagLogFormat, c.LogFormat))
	}
	for _, d := range []struct {
		flag flagName
		v    time.Duration
	}{
		{flagDrainTimeout, c.DrainTimeout},
		{flagDrainDelay, c.DrainDelay},
		{flagConnectionTimeout, c.ConnectionTimeout},
		{flagKeepaliveTime, c.KeepaliveTime},
		{flagKeepaliveTimeout, c.KeepaliveTimeout},
		{flagMaxConnectionIdle, c.MaxConnectionIdle},
		{flagMaxConnectionAge, c.MaxConnectionAge},
		{flagMaxConnectionAgeGrace, c.MaxConnectionAgeGrace},
		{flagKeepaliveMinTime, c.KeepaliveMinTime},
		{flagFirstMessageTimeout, c.FirstMessageTimeout},
		{flagSendStallTimeout, c.SendStallTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v: must not be negative", d.flag, d.v))
		}
	}
	if c.ConnectionTimeout == 0 {
		errs = append(errs, fmt.Errorf("%s must be positive", flagConnectionTimeout))
	}
	if c.MaxRecvMsgSize <= 0 {
		errs = append(errs, fmt.Errorf("%s %d: must be positive", flagMaxRecvMsgSize, c.MaxRecvMsgSize))
	}
	if c.MaxSendMsgSize <= 0 {
		errs = append(errs, fmt.Errorf("%s %d: must be positive", flagMaxSendMsgSize, c.MaxSendMsgSize))
	}
	if c.StreamWorkers > 1<<16 {
		errs = append(errs, fmt.Errorf("%s %d: want 0 to %d", flagStreamWorkers, c.StreamWorkers, 1<<16))
	}
	if c.MaxConcurrentStreams == 0 || c.MaxConcurrentStreams > 1<<32-1 {
		errs = append(errs, fmt.Errorf("%s %d: want 1 to %d", flagMaxConcurrentStreams, c.MaxConcurrentStreams, uint64(1<<32-1)))
	}
	for _, n := range []struct {
		flag flagName
		v    int64
	}{
		{flagMemoryLimit, c.MemoryLimit},
		{flagMaxRPCMemory, c.MaxRPCMemory},
		{flagMaxRPCMemoryPerClient, c.MaxRPCMemoryPerClient},
		{flagMaxConnections, int64(c.MaxConnections)},
		{flagMaxConnectionsPerClient, int64(c.MaxConnectionsPerClient)},
	} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: must not be negative (0 derives it)", n.flag, n.v))
		}
	}
	if c.MemoryLimit != 0 && c.MemoryLimit < 64<<20 {
		errs = append(errs, fmt.Errorf("%s %d: want at least 67108864 (64 MiB), or 0 for the cgroup's limit", flagMemoryLimit, c.MemoryLimit))
	}
	if c.MaxHealthStreams <= 0 {
		errs = append(errs, fmt.Errorf("%s %d: must be positive", flagMaxHealthStreams, c.MaxHealthStreams))
	}
	if math.IsNaN(c.RateLimit) || math.IsInf(c.RateLimit, 0) || c.RateLimit < 0 {
		errs = append(errs, fmt.Errorf("%s %v: want a number of requests per second, 0 to disable", flagRateLimit, c.RateLimit))
	}
	if c.RateLimitBurst < 0 {
		errs = append(errs, fmt.Errorf("%s %d: must not be negative", flagRateLimitBurst, c.RateLimitBurst))
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
	for _, f := range []struct {
		flag flagName
		path string
	}{
		{flagTLSCert, c.TLSCert}, {flagTLSKey, c.TLSKey}, {flagTLSClientCA, c.TLSClientCA},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.flag, err))
		}
	}
	return errors.Join(errs...)
}

// checkAddr accepts host:port with a numeric port, or a port only (":50051").
// Host names are resolved when listening, not here.
func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	return nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var items []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// checkOrigin accepts "*" or an origin as browsers send it:
// scheme://host[:port], nothing after.
func checkOrigin(origin string) error {
	if origin == "*" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q: want an origin as browsers send it, scheme://host[:port] (https://app.example.com), or *", origin)
	}
	if u.Path == "/" {
		return fmt.Errorf("%q: an origin has no path; drop the trailing /", origin)
	}
	return nil
}
