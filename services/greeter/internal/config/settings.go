package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/acme/greeter/services/greeter/internal/admission"
	"github.com/acme/greeter/services/greeter/internal/memlimit"
	"github.com/acme/greeter/services/greeter/internal/server"
)

// settings declares every setting of the server, each once: flag name,
// Config field, default (the server's own where it is a server option),
// help, bounds, and the server option it becomes. Adding a setting is a
// Config field, a flag name and a line here.
var settings = []setting{
	declare(flagGRPCAddr, func(c *Config) *string { return &c.GRPCAddr }, ":50051",
		"`address` the gRPC server listens on (host:port; port 0 picks a free port)").
		within(checkAddr),
	declare(flagMetricsAddr, func(c *Config) *string { return &c.MetricsAddr }, ":9090",
		"`address` of the admin HTTP server (/metrics, /healthz, /readyz); empty disables it").
		within(func(a string) error {
			if a == "" {
				return nil
			}
			return checkAddr(a)
		}),
	declare(flagHTTPAddr, func(c *Config) *string { return &c.HTTPAddr }, ":8080",
		"`address` of the HTTP port: the gRPC services over Connect (JSON, binary, GET), gRPC-Web and gRPC, for browsers and plain HTTP callers, with the gRPC port's TLS and limits; empty disables it").
		within(func(a string) error {
			if a == "" {
				return nil
			}
			return checkAddr(a)
		}),
	declare(flagCORSAllowedOrigins, func(c *Config) *string { return &c.CORSAllowedOrigins }, "",
		"comma-separated `origins` (https://app.example.com) whose pages may call the HTTP port from a browser, * for any; a request from another origin is refused; empty sends no CORS headers").
		within(checkOrigins).
		becomes(func(list string) server.Option {
			return server.WithAllowedOrigins(Config{CORSAllowedOrigins: list}.AllowedOrigins()...)
		}),
	logLevelSetting{flagLogLevel, slog.LevelInfo, "minimum log `level`: debug, info, warn or error"},
	declare(flagLogFormat, func(c *Config) *string { return &c.LogFormat }, "text",
		"log `format`: text or json").
		within(oneOf("text", "json")),
	declare(flagReflection, func(c *Config) *bool { return &c.Reflection }, server.DefaultReflection,
		"serve gRPC server reflection (v1 and v1alpha)").
		becomes(server.WithReflection),
	declare(flagPprof, func(c *Config) *bool { return &c.Pprof }, false,
		"serve Go profiles (net/http/pprof) under /debug/pprof/ on the admin HTTP server; off by default, as profiles reveal internals"),
	declare(flagDrainTimeout, func(c *Config) *time.Duration { return &c.DrainTimeout }, server.DefaultDrainTimeout,
		"on SIGTERM/SIGINT, how long in-flight RPCs may take to finish before they are cut off").
		becomes(server.WithDrainTimeout),
	declare(flagDrainDelay, func(c *Config) *time.Duration { return &c.DrainDelay }, 0,
		"on SIGTERM/SIGINT, how long to keep accepting RPCs while reporting NOT_SERVING, so load balancers notice first").
		becomes(server.WithDrainDelay),

	declare(flagTLSCert, func(c *Config) *string { return &c.TLSCert }, "",
		"PEM certificate `file`; with "+flagTLSKey.String()+" enables TLS (reloaded when it changes)").
		within(fileExists),
	declare(flagTLSKey, func(c *Config) *string { return &c.TLSKey }, "",
		"PEM private key `file` of "+flagTLSCert.String()).
		within(fileExists),
	declare(flagTLSClientCA, func(c *Config) *string { return &c.TLSClientCA }, "",
		"PEM CA `file`; when set, clients must present a certificate it signed (mTLS)").
		within(fileExists),

	declare(flagMaxRecvMsgSize, func(c *Config) *int { return &c.MaxRecvMsgSize }, server.DefaultMaxRecvMsgSize,
		"largest message the server accepts, in `bytes`").
		becomes(server.WithMaxRecvMsgSize),
	declare(flagMaxSendMsgSize, func(c *Config) *int { return &c.MaxSendMsgSize }, server.DefaultMaxSendMsgSize,
		"largest message the server sends, in `bytes`").
		becomes(server.WithMaxSendMsgSize),
	declare(flagMaxConcurrentStreams, func(c *Config) *uint { return &c.MaxConcurrentStreams }, server.DefaultMaxConcurrentStreams,
		"most concurrent RPCs on one client connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; beyond it, REFUSED_STREAM)").
		within(between[uint](1, math.MaxUint32)).
		becomes(func(n uint) server.Option { return server.WithMaxConcurrentStreams(uint32(n)) }),
	declare(flagStreamWorkers, func(c *Config) *uint { return &c.StreamWorkers }, server.DefaultStreamWorkers,
		"goroutines kept to run RPCs, on each port (gRPC, and HTTP/2 on the HTTP port), so their stacks are reused rather than grown anew per RPC; RPCs beyond them get their own goroutine; 0 gives every RPC a new goroutine").
		within(between[uint](0, 1<<16)).
		becomes(func(n uint) server.Option { return server.WithStreamWorkers(uint32(n)) }),
	declare(flagConnectionTimeout, func(c *Config) *time.Duration { return &c.ConnectionTimeout }, server.DefaultConnectionTimeout,
		"how long a new connection may take to complete its handshake").
		becomes(server.WithConnectionTimeout),

	declare(flagKeepaliveTime, func(c *Config) *time.Duration { return &c.KeepaliveTime }, server.DefaultKeepaliveTime,
		"ping a client after this long without activity, to detect dead connections").
		becomes(server.WithKeepaliveTime),
	declare(flagKeepaliveTimeout, func(c *Config) *time.Duration { return &c.KeepaliveTimeout }, server.DefaultKeepaliveTimeout,
		"close the connection when a ping is not answered within this long").
		becomes(server.WithKeepaliveTimeout),
	declare(flagMaxConnectionIdle, func(c *Config) *time.Duration { return &c.MaxConnectionIdle }, 0,
		"close connections idle (no RPC) this long; 0 never").
		becomes(server.WithMaxConnectionIdle),
	declare(flagMaxConnectionAge, func(c *Config) *time.Duration { return &c.MaxConnectionAge }, server.DefaultMaxConnectionAge,
		"ask clients to reconnect after this long (GOAWAY), so client-side load balancing sees new servers; 0 never").
		becomes(server.WithMaxConnectionAge),
	declare(flagMaxConnectionAgeGrace, func(c *Config) *time.Duration { return &c.MaxConnectionAgeGrace }, server.DefaultMaxConnectionAgeGrace,
		"after "+flagMaxConnectionAge.String()+", how long RPCs in flight may continue before the connection is closed").
		becomes(server.WithMaxConnectionAgeGrace),
	declare(flagKeepaliveMinTime, func(c *Config) *time.Duration { return &c.KeepaliveMinTime }, server.DefaultKeepaliveMinTime,
		"clients pinging more often than this are disconnected (too_many_pings)").
		becomes(server.WithKeepaliveMinTime),
	declare(flagKeepalivePermitNoStream, func(c *Config) *bool { return &c.KeepalivePermitNoStream }, server.DefaultKeepalivePermitWithoutStream,
		"allow client pings on connections with no RPC in flight").
		becomes(server.WithKeepalivePermitWithoutStream),

	declare(flagRateLimit, func(c *Config) *float64 { return &c.RateLimit }, 0,
		"RPCs per second each client (mTLS certificate subject, else IP address) may start; 0 disables rate limiting; health checks are exempt").
		becomes(server.WithRateLimit),
	declare(flagRateLimitBurst, func(c *Config) *int { return &c.RateLimitBurst }, 0,
		"RPCs a client may start at once under "+flagRateLimit.String()+"; 0 means "+flagRateLimit.String()+" rounded up").
		becomes(server.WithRateLimitBurst),

	// The server is given the memory limit main plans for (this one, else
	// the cgroup's), not this setting: see main's planMemory.
	declare(flagMemoryLimit, func(c *Config) *int64 { return &c.MemoryLimit }, 0,
		fmt.Sprintf("memory the server plans for, in `bytes`: GOMEMLIMIT is set to %.0f%% of it and the limits left at 0 are derived from it; 0 reads the container's cgroup limit, and without one plans for %d (%s)",
			memlimit.GoMemLimitRatio*100, server.DefaultMemoryLimit, quantity(server.DefaultMemoryLimit))).
		within(memoryLimit),
	declare(flagMaxRPCMemory, func(c *Config) *int64 { return &c.MaxRPCMemory }, 0,
		fmt.Sprintf("memory, in `bytes`, RPCs in flight may hold (health apart), measured: Go heap and stacks over the server's at start; beyond it the client holding the most gives way (its RPCs refused or ended RESOURCE_EXHAUSTED), a quarter beyond it everyone is refused UNAVAILABLE; from half of it the first-message and send-stall timeouts shorten, to a tenth at it; 0 is %.0f%% of %s",
			server.DefaultRPCMemoryShare*100, flagMemoryLimit)).
		becomes(server.WithMaxRPCMemory),
	declare(flagMaxRPCMemoryPerClient, func(c *Config) *int64 { return &c.MaxRPCMemoryPerClient }, 0,
		"fixed cap, in `bytes`, on what one client (mTLS subject, else IP) may hold, estimated at "+quantity(admission.RPCCost)+" an RPC, "+quantity(admission.StalledCost)+" more while a send waits on it; beyond it, RESOURCE_EXHAUSTED with RetryInfo; 0 sets none: a lone client may use all of "+flagMaxRPCMemory.String()+", and when the server is short each client is owed it over the clients holding RPCs").
		becomes(server.WithMaxRPCMemoryPerClient),
	declare(flagMaxHealthStreams, func(c *Config) *int { return &c.MaxHealthStreams }, server.DefaultMaxHealthStreams,
		"most health Watch streams in flight, and apart most Check calls, outside "+flagMaxRPCMemory.String()+" so that probes are answered; one client may hold an eighth of each").
		becomes(server.WithMaxHealthStreams),
	declare(flagMaxConnections, func(c *Config) *int { return &c.MaxConnections }, 0,
		fmt.Sprintf("most open client connections, both ports together; at the limit a new one takes the place of the one idle longest, and is closed when accepted only if none is idle; from half of it, idle connections are closed after a timeout shrinking from a minute at half to a second at the limit; 0 is %.0f%% of %s at %s (the measured cost of an idle connection, rounded up) each",
			server.ConnectionMemoryShare*100, flagMemoryLimit, quantity(server.MemoryPerConnection))).
		becomes(server.WithMaxConnections),
	declare(flagMaxConnectionsPerClient, func(c *Config) *int { return &c.MaxConnectionsPerClient }, 0,
		"most open connections from one IP address; 0 is a quarter of "+flagMaxConnections.String()).
		becomes(server.WithMaxConnectionsPerClient),
	declare(flagFirstMessageTimeout, func(c *Config) *time.Duration { return &c.FirstMessageTimeout }, server.DefaultFirstMessageTimeout,
		"cancel an RPC whose first request message has not fully arrived within this long; 0 never").
		becomes(server.WithFirstMessageTimeout),
	declare(flagSendStallTimeout, func(c *Config) *time.Duration { return &c.SendStallTimeout }, server.DefaultSendStallTimeout,
		"close a connection on which an RPC's send has waited this long for a client that reads nothing; 0 never").
		becomes(server.WithSendStallTimeout),

	// Options of package tracing's handler, which main installs.
	declare(flagTraceMessageEvents, func(c *Config) *bool { return &c.TraceMessageEvents }, false,
		"when tracing is on, add a span event per message sent and received (for streams: one per message)"),
	declare(flagTraceHealthReflection, func(c *Config) *bool { return &c.TraceHealthAndReflection }, false,
		"when tracing is on, trace grpc.health.v1 and server reflection calls too"),
}

// ServerOption is the server option one setting becomes.
type ServerOption struct {
	Flag   string // "drain-timeout"
	Option server.Option
}

// ServerSettings returns the server option of every setting that is one,
// with its flag's name. The memory limit is not among them: main gives the
// server the limit it plans for (--memory-limit, else the cgroup's).
func (c Config) ServerSettings() []ServerOption {
	var opts []ServerOption
	for _, s := range settings {
		if opt := s.option(&c); opt != nil {
			opts = append(opts, ServerOption{string(s.flagName()), opt})
		}
	}
	return opts
}

// ServerOptions is ServerSettings' options alone, and the flags' names for
// the answers to the calls a setting refused.
func (c Config) ServerOptions() []server.Option {
	opts := []server.Option{server.WithSettingNames(settingNames)}
	for _, s := range c.ServerSettings() {
		opts = append(opts, s.Option)
	}
	return opts
}

// settingNames are the flags of the settings behind the HTTP port's
// refusals.
var settingNames = server.SettingNames{
	MaxMessageSize:      "--" + string(flagMaxRecvMsgSize),
	AllowedOrigins:      "--" + string(flagCORSAllowedOrigins),
	FirstMessageTimeout: "--" + string(flagFirstMessageTimeout),
}

// between is the bound lo ≤ n ≤ hi.
func between[T uint | int](lo, hi T) func(T) error {
	return func(n T) error {
		if n < lo || n > hi {
			return fmt.Errorf("want %d to %d", lo, hi)
		}
		return nil
	}
}

// oneOf is the bound of a setting that is one of a few words.
func oneOf(words ...string) func(string) error {
	return func(s string) error {
		for _, w := range words {
			if s == w {
				return nil
			}
		}
		if len(words) == 2 {
			return fmt.Errorf("want %s or %s", words[0], words[1])
		}
		return fmt.Errorf("want one of %q", words)
	}
}

// fileExists is the bound of a file's path: empty, or a file that exists.
func fileExists(path string) error {
	if path == "" {
		return nil
	}
	_, err := os.Stat(path)
	return err
}

// memoryLimit is --memory-limit's bound: 0, the cgroup's limit, or what
// server.WithMemoryLimit accepts.
func memoryLimit(n int64) error {
	if n < 0 {
		return errors.New("must not be negative (0 derives it)")
	}
	if n == 0 {
		return nil
	}
	if oe := (*server.OptionError)(nil); errors.As(server.CheckOption(server.WithMemoryLimit(n)), &oe) {
		return fmt.Errorf("%s, or 0 for the cgroup's limit", oe.Reason)
	}
	return nil
}
