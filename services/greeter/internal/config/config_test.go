package config

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse(nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		GRPCAddr: ":50051", MetricsAddr: ":9090", HTTPAddr: ":8080", LogLevel: slog.LevelInfo, LogFormat: "text",
		Reflection: true, DrainTimeout: 20 * time.Second,
		MaxRecvMsgSize: 64 << 10, MaxSendMsgSize: 4 << 20, MaxConcurrentStreams: 100, StreamWorkers: 128,
		MaxHealthStreams: 64, FirstMessageTimeout: 10 * time.Second, SendStallTimeout: 30 * time.Second,
		ConnectionTimeout: 10 * time.Second, KeepaliveTime: time.Minute, KeepaliveTimeout: 20 * time.Second,
		MaxConnectionAge: 30 * time.Minute, MaxConnectionAgeGrace: 5 * time.Minute,
		KeepaliveMinTime: 10 * time.Second, KeepalivePermitNoStream: true,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", c, want)
	}
}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		desc string
		args []string
		env  map[string]string
		want func(Config) bool
	}{
		{"env sets", nil, map[string]string{"GREETER_GRPC_ADDR": "127.0.0.1:7000"},
			func(c Config) bool { return c.GRPCAddr == "127.0.0.1:7000" }},
		{"flag wins over env", []string{"--grpc-addr", "127.0.0.1:8000"}, map[string]string{"GREETER_GRPC_ADDR": "127.0.0.1:7000"},
			func(c Config) bool { return c.GRPCAddr == "127.0.0.1:8000" }},
		{"env duration", nil, map[string]string{"GREETER_DRAIN_TIMEOUT": "3s"},
			func(c Config) bool { return c.DrainTimeout == 3*time.Second }},
		{"flag duration wins", []string{"-drain-timeout=4s"}, map[string]string{"GREETER_DRAIN_TIMEOUT": "3s"},
			func(c Config) bool { return c.DrainTimeout == 4*time.Second }},
		{"env bool", nil, map[string]string{"GREETER_REFLECTION": "false"},
			func(c Config) bool { return !c.Reflection }},
		{"flag bool wins", []string{"--reflection=true"}, map[string]string{"GREETER_REFLECTION": "false"},
			func(c Config) bool { return c.Reflection }},
		{"empty env disables metrics", nil, map[string]string{"GREETER_METRICS_ADDR": ""},
			func(c Config) bool { return c.MetricsAddr == "" }},
		{"log level and format", []string{"--log-level", "debug"}, map[string]string{"GREETER_LOG_FORMAT": "json", "GREETER_LOG_LEVEL": "error"},
			func(c Config) bool { return c.LogLevel == slog.LevelDebug && c.LogFormat == "json" }},
		{"keepalive", []string{"--max-connection-age=1m", "--keepalive-permit-without-stream=false"}, map[string]string{"GREETER_KEEPALIVE_MIN_TIME": "1s"},
			func(c Config) bool {
				return c.MaxConnectionAge == time.Minute && !c.KeepalivePermitNoStream && c.KeepaliveMinTime == time.Second
			}},
		{"rate limit from env", nil, map[string]string{"GREETER_RATE_LIMIT": "2.5", "GREETER_RATE_LIMIT_BURST": "10"},
			func(c Config) bool { return c.RateLimit == 2.5 && c.RateLimitBurst == 10 }},
		{"rate limit flag wins", []string{"--rate-limit", "100"}, map[string]string{"GREETER_RATE_LIMIT": "2.5"},
			func(c Config) bool { return c.RateLimit == 100 && c.RateLimitBurst == 0 }},
		{"empty env disables the HTTP port", nil, map[string]string{"GREETER_HTTP_ADDR": ""},
			func(c Config) bool { return c.HTTPAddr == "" }},
		{"CORS origins from env", nil, map[string]string{"GREETER_CORS_ALLOWED_ORIGINS": "https://a.example, http://localhost:3000,"},
			func(c Config) bool {
				return reflect.DeepEqual(c.AllowedOrigins(), []string{"https://a.example", "http://localhost:3000"})
			}},
		{"CORS any origin", []string{"--cors-allowed-origins", "*"}, nil,
			func(c Config) bool { return reflect.DeepEqual(c.AllowedOrigins(), []string{"*"}) }},
		{"port 0", []string{"--grpc-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"}, nil,
			func(c Config) bool { return c.GRPCAddr == "127.0.0.1:0" && c.MetricsAddr == "127.0.0.1:0" }},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			c, err := Parse(tt.args, env(tt.env), &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestInvalid(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "server.crt")
	if err := os.WriteFile(cert, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		desc    string
		args    []string
		env     map[string]string
		message string
	}{
		{"bad grpc address", []string{"--grpc-addr", "localhost"}, nil, "--grpc-addr"},
		{"bad port", []string{"--grpc-addr", ":http"}, nil, "port"},
		{"port out of range", []string{"--grpc-addr", ":70000"}, nil, "port"},
		{"bad metrics address", []string{"--metrics-addr", "nope"}, nil, "--metrics-addr"},
		{"metrics on the gRPC port", []string{"--grpc-addr", ":5000", "--metrics-addr", ":5000"}, nil, "must differ"},
		{"bad HTTP address", []string{"--http-addr", "8080"}, nil, "--http-addr"},
		{"HTTP on the gRPC port", []string{"--grpc-addr", ":5000", "--http-addr", ":5000"}, nil, "--http-addr \":5000\" must differ"},
		{"HTTP on the metrics port", nil, map[string]string{"GREETER_HTTP_ADDR": ":9090"}, "must differ"},
		{"origin with a path", []string{"--cors-allowed-origins", "https://a.example/app"}, nil, "--cors-allowed-origins"},
		{"origin with a trailing slash", []string{"--cors-allowed-origins", "https://a.example/"}, nil, "drop the trailing /"},
		{"origin without a scheme", []string{"--cors-allowed-origins", "a.example"}, nil, "scheme://host"},
		{"negative drain timeout", []string{"--drain-timeout", "-1s"}, nil, "--drain-timeout -1s: must not be negative"},
		{"negative keepalive", []string{"--keepalive-time", "-1s"}, nil, "--keepalive-time"},
		{"zero connection timeout", []string{"--connection-timeout", "0"}, nil, "--connection-timeout"},
		{"bad duration from env", nil, map[string]string{"GREETER_DRAIN_DELAY": "soon"}, "GREETER_DRAIN_DELAY"},
		{"bad log level", []string{"--log-level", "loud"}, nil, "--log-level"},
		{"bad log format", []string{"--log-format", "xml"}, nil, "--log-format"},
		{"zero message size", []string{"--max-recv-msg-size", "0"}, nil, "--max-recv-msg-size"},
		{"negative send size", []string{"--max-send-msg-size", "-5"}, nil, "--max-send-msg-size"},
		{"zero streams", []string{"--max-concurrent-streams", "0"}, nil, "--max-concurrent-streams"},
		{"too many stream workers", []string{"--stream-workers", "70000"}, nil, "--stream-workers"},
		{"cert without key", []string{"--tls-cert", cert}, nil, "go together"},
		{"client CA without cert", []string{"--tls-client-ca", cert}, nil, "--tls-client-ca needs"},
		{"missing cert file", []string{"--tls-cert", missing, "--tls-key", cert}, nil, "--tls-cert"},
		{"missing client CA file", []string{"--tls-cert", cert, "--tls-key", cert, "--tls-client-ca", missing}, nil, "--tls-client-ca"},
		{"negative rate limit", []string{"--rate-limit", "-1"}, nil, "--rate-limit -1"},
		{"NaN rate limit", []string{"--rate-limit", "NaN"}, nil, "--rate-limit NaN"},
		{"infinite rate limit", nil, map[string]string{"GREETER_RATE_LIMIT": "+Inf"}, "--rate-limit +Inf"},
		{"rate limit not a number", nil, map[string]string{"GREETER_RATE_LIMIT": "fast"}, "GREETER_RATE_LIMIT"},
		{"negative burst", []string{"--rate-limit", "5", "--rate-limit-burst", "-1"}, nil, "--rate-limit-burst -1"},
		{"burst without rate", []string{"--rate-limit-burst", "5"}, nil, "--rate-limit-burst needs --rate-limit"},
		{"unknown flag", []string{"--colour"}, nil, "colour"},
		{"stray argument", []string{"serve"}, nil, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := Parse(tt.args, env(tt.env), &bytes.Buffer{})
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse: %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("error %q does not mention %q", err, tt.message)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	var out bytes.Buffer
	if _, err := Parse([]string{"--help"}, env(nil), &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"--grpc-addr", "GREETER_GRPC_ADDR", `default ":50051"`, "GREETER_METRICS_ADDR", "GREETER_TLS_CLIENT_CA", `default "20s"`, "Exit codes"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	// --version short-circuits validation: it must work whatever else is set.
	c, err := Parse([]string{"--version"}, env(map[string]string{"GREETER_DRAIN_TIMEOUT": "-1s"}), &out)
	if err != nil || !c.Version {
		t.Fatalf("--version: %+v, %v", c, err)
	}
	// GREETER_VERSION is left to deployments: it neither asks for the
	// version nor breaks the start.
	c, err = Parse(nil, env(map[string]string{"GREETER_VERSION": "v1.2.3"}), &out)
	if err != nil || c.Version {
		t.Fatalf("GREETER_VERSION set: %+v, %v", c, err)
	}
}

// helpFlags returns the flags --help lists, and the whole help text.
func helpFlags(t *testing.T) (map[string]bool, string) {
	t.Helper()
	var out bytes.Buffer
	if _, err := Parse([]string{"--help"}, env(nil), &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	flags := map[string]bool{}
	for l := range strings.Lines(out.String()) {
		if name, ok := strings.CutPrefix(l, "  --"); ok {
			flags[strings.Fields(name)[0]] = true
		}
	}
	return flags, out.String()
}

var flagMention = regexp.MustCompile(`--[a-z][a-z0-9-]*`)

// TestHelpNamesOnlyFlags: a flag that is renamed cannot stay behind in the
// help text of another.
func TestHelpNamesOnlyFlags(t *testing.T) {
	flags, help := helpFlags(t)
	for _, m := range flagMention.FindAllString(help, -1) {
		if !flags[strings.TrimPrefix(m, "--")] {
			t.Errorf("--help mentions %s, which is not a flag", m)
		}
	}
}

// TestREADMEListsEveryFlag keeps the README's configuration table and the
// flags in step: every flag with its environment variable, and no other.
func TestREADMEListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	flags, _ := helpFlags(t)
	listed := map[string]bool{}
	for l := range strings.Lines(string(readme)) {
		if name, ok := strings.CutPrefix(l, "| `--"); ok {
			listed[name[:strings.IndexByte(name, '`')]] = true
		}
	}
	for name := range flags {
		envCell := "| `" + EnvName(name) + "` |"
		if name == string(flagVersion) {
			envCell = "| (none) |"
		}
		if !listed[name] || !strings.Contains(string(readme), "| `--"+name+"` "+envCell) {
			t.Errorf("README.md does not list --%s with %s", name, envCell)
		}
	}
	for name := range listed {
		if !flags[name] {
			t.Errorf("README.md lists --%s, which is not a flag", name)
		}
	}
}

// TestEverySettingIsPlaced: a setting either becomes a server option or is
// one main uses itself, named here; a new setting that is neither fails.
func TestEverySettingIsPlaced(t *testing.T) {
	usedByMain := map[flagName]bool{
		flagGRPCAddr: true, flagMetricsAddr: true, flagLogLevel: true, flagLogFormat: true,
		// main binds the HTTP port's listener, which the server serves.
		flagHTTPAddr: true, flagPprof: true, flagTLSCert: true, flagTLSKey: true, flagTLSClientCA: true,
		flagMemoryLimit: true, flagTraceMessageEvents: true, flagTraceHealthReflection: true,
	}
	c, err := Parse(nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[flagName]bool{}
	for _, s := range settings {
		if seen[s.flagName()] {
			t.Errorf("%s declared twice", s.flagName())
		}
		seen[s.flagName()] = true
		if isOption := s.option(&c) != nil; isOption == usedByMain[s.flagName()] {
			t.Errorf("%s: server option %v, used by main %v: want exactly one", s.flagName(), isOption, usedByMain[s.flagName()])
		}
	}
}
